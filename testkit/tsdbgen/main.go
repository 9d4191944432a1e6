// Command tsdbgen writes TSDB blocks of synthetic history of the webhook delivery service, with the
// deployed Prometheus' own TSDB packages, for the backtest benchmark (testkit/backtest_bench.py):
// scraping a week of history at 20 pods x 200 endpoints would take a week, and its text
// exposition would be over 100 GB.
//
// Every pod of every service is one scrape target as the Prometheus Operator labels it (namespace,
// service, pod, container, job, instance, monitor; honorLabels keeps the metric's own `endpoint`),
// scraped every -interval: per customer endpoint two delivery counters (success, error) and the
// latency histogram's buckets that the ServiceMonitor keeps (0.05 ... 2.5, +Inf) with _sum and
// _count; per pod the queue depth, retries by attempt, `up` and the scrape's sample count. Traffic
// follows a daily cycle; each -fault makes one service fail (errors), slow down (latency) or back
// up (backlog) for a while. Everything is deterministic: the same flags write the same samples.
//
//	tsdbgen -out DIR -start MS -end MS [-interval 30s] [-services 2] [-pods 10] [-endpoints 200]
//	        [-fault service:errors|latency|backlog:startMs:endMs ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// The histogram buckets the ServiceMonitor's metric relabelling keeps, and the fraction of
// deliveries at or under each: healthy (P95 about 0.2 s) and slow (P95 about 2 s).
var (
	les     = []string{"0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"}
	healthy = []float64{0.30, 0.70, 0.97, 0.995, 0.999, 1, 1}
	slow    = []float64{0, 0.02, 0.10, 0.30, 0.70, 0.98, 1}
)

const (
	namespace  = "webhook-delivery"
	errorRatio = 0.0005 // of deliveries failing in normal operation
	faultRatio = 0.25   // during an errors fault
	meanSum    = 0.08   // seconds per delivery, healthy
	slowSum    = 0.9    // seconds per delivery, slow
	queueDepth = 200.0  // per pod in normal operation
	backlog    = 8000.0 // per pod during a backlog fault
	blockHours = 24     // one block per day: a week is 7 blocks, no compaction needed
)

type fault struct {
	service    string
	kind       string
	start, end int64
}

type faults []fault

func (f *faults) String() string { return fmt.Sprint(*f) }

func (f *faults) Set(text string) error {
	parts := strings.Split(text, ":")
	if len(parts) != 4 {
		return fmt.Errorf("expected service:kind:startMs:endMs, got %q", text)
	}
	start, err1 := strconv.ParseInt(parts[2], 10, 64)
	end, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || end <= start {
		return fmt.Errorf("bad fault times in %q", text)
	}
	if parts[1] != "errors" && parts[1] != "latency" && parts[1] != "backlog" {
		return fmt.Errorf("fault kind %q: expected errors, latency or backlog", parts[1])
	}
	*f = append(*f, fault{parts[0], parts[1], start, end})
	return nil
}

// series is one time series and its state: its value is a counter's total or a gauge's level.
type series struct {
	labels labels.Labels
	ref    storage.SeriesRef
	value  float64
	carry  float64 // the fraction of a delivery not yet counted
}

// count adds `amount` deliveries in whole numbers, carrying the fraction to the next scrape: whole
// counts, as an exporter's are, compress as Prometheus' do (about 1.3 bytes per sample).
func (s *series) count(amount float64) float64 {
	s.carry += amount
	whole := math.Floor(s.carry)
	s.carry -= whole
	s.value += whole
	return whole
}

// pod holds the series of one scrape target, in a fixed order.
type pod struct {
	service   string
	rates     []float64 // deliveries per second per endpoint, at the cycle's mean
	success   []*series
	errors    []*series
	buckets   [][]*series
	sums      []*series
	counts    []*series
	queue     *series
	retries   []*series
	up        *series
	samples   *series
	allSeries []*series
}

func newPod(service string, index int, endpoints int, monitor string, seed *uint64) *pod {
	name := fmt.Sprintf("%s-%d", service, index)
	target := []string{"namespace", namespace, "service", service, "pod", name, "container", "webhook-delivery",
		"job", service, "instance", fmt.Sprintf("10.0.%d.%d:8080", index/250, index%250+1), "monitor", monitor}
	p := &pod{service: service}
	add := func(name string, extra ...string) *series {
		s := &series{labels: labels.FromStrings(append(append([]string{"__name__", name}, target...), extra...)...)}
		p.allSeries = append(p.allSeries, s)
		return s
	}
	for e := 0; e < endpoints; e++ {
		endpoint := fmt.Sprintf("ep_%05d_example_com", e)
		p.rates = append(p.rates, 0.05+2*random(seed)) // 0.05 to 2.05 deliveries per second
		p.success = append(p.success, add("webhook_deliveries_total", "endpoint", endpoint, "status", "success"))
		p.errors = append(p.errors, add("webhook_deliveries_total", "endpoint", endpoint, "status", "error"))
		var buckets []*series
		for _, le := range les {
			buckets = append(buckets, add("webhook_delivery_duration_seconds_bucket", "endpoint", endpoint, "le", le))
		}
		p.buckets = append(p.buckets, buckets)
		p.sums = append(p.sums, add("webhook_delivery_duration_seconds_sum", "endpoint", endpoint))
		p.counts = append(p.counts, add("webhook_delivery_duration_seconds_count", "endpoint", endpoint))
	}
	p.queue = add("webhook_queue_depth")
	for _, attempt := range []string{"1", "2", "3"} {
		p.retries = append(p.retries, add("webhook_retries_total", "attempt_number", attempt))
	}
	p.up = add("up", "endpoint", "metrics")
	p.samples = add("scrape_samples_post_metric_relabeling", "endpoint", "metrics")
	return p
}

// random is xorshift64*: deterministic, in [0, 1).
func random(state *uint64) float64 {
	*state ^= *state >> 12
	*state ^= *state << 25
	*state ^= *state >> 27
	return float64((*state*2685821657736338717)>>11) / float64(1<<53)
}

// step advances the pod's series by one scrape interval ending at t.
func (p *pod) step(t int64, seconds float64, active map[string]bool) {
	cycle := 1 + 0.5*math.Sin(2*math.Pi*float64(t%86_400_000)/86_400_000)
	ratio, shares, mean, depth := errorRatio, healthy, meanSum, queueDepth
	if active["errors"] {
		ratio = faultRatio
	}
	if active["latency"] {
		shares, mean = slow, slowSum
	}
	if active["backlog"] {
		depth = backlog
	}
	var failed float64
	for e, rate := range p.rates {
		total := p.counts[e].count(rate * cycle * seconds)
		errors := p.errors[e].count(total * ratio)
		p.success[e].value += total - errors
		failed += errors
		for b, share := range shares {
			p.buckets[e][b].count(total * share)
		}
		p.sums[e].value += math.Round(total*mean*1000) / 1000
	}
	p.queue.value = depth
	for i, share := range []float64{0.7, 0.2, 0.1} {
		p.retries[i].count(failed * share)
	}
	p.up.value = 1
	p.samples.value = float64(len(p.allSeries) - 2)
}

func main() {
	var (
		out       = flag.String("out", "", "the TSDB data directory to write blocks into")
		start     = flag.Int64("start", 0, "first sample, Unix milliseconds")
		end       = flag.Int64("end", 0, "last sample at or before, Unix milliseconds")
		interval  = flag.Duration("interval", 30*time.Second, "scrape interval")
		services  = flag.Int("services", 2, "services (webhook-api-0, webhook-api-1, ...)")
		pods      = flag.Int("pods", 10, "pods per service")
		endpoints = flag.Int("endpoints", 200, "customer endpoints per pod")
		monitor   = flag.String("monitor", "webhook-api", "the ServiceMonitor selecting the services")
		injected  faults
	)
	flag.Var(&injected, "fault", "service:errors|latency|backlog:startMs:endMs (repeatable)")
	flag.Parse()
	if *out == "" || *end <= *start {
		fmt.Fprintln(os.Stderr, "tsdbgen: -out, -start and -end (after -start) are required")
		os.Exit(2)
	}
	seed := uint64(88172645463325252)
	var all []*pod
	var count int
	for s := 0; s < *services; s++ {
		service := fmt.Sprintf("%s-%d", *monitor, s)
		for i := 0; i < *pods; i++ {
			p := newPod(service, i, *endpoints, *monitor, &seed)
			all = append(all, p)
			count += len(p.allSeries)
		}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	step := interval.Milliseconds()
	block := int64(blockHours * time.Hour / time.Millisecond)
	started := time.Now()
	var samples int64
	for from := *start; from <= *end; from = (from/block + 1) * block {
		until := min(*end, (from/block+1)*block-1)
		written, err := writeBlock(*out, logger, all, from, until, step, injected)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tsdbgen: %v\n", err)
			os.Exit(1)
		}
		samples += written
	}
	fmt.Printf("%d series, %d samples, %s to %s, in %.1f s\n", count, samples,
		time.UnixMilli(*start).UTC().Format(time.RFC3339), time.UnixMilli(*end).UTC().Format(time.RFC3339),
		time.Since(started).Seconds())
}

// writeBlock appends every scrape in [from, until] (on the interval's grid) and writes one block.
func writeBlock(dir string, logger *slog.Logger, all []*pod, from, until, step int64, injected faults) (int64, error) {
	writer, err := tsdb.NewBlockWriter(logger, dir, until-from+1)
	if err != nil {
		return 0, err
	}
	defer writer.Close()
	ctx := context.Background()
	for _, p := range all {
		for _, s := range p.allSeries {
			s.ref = 0 // a new head: new references
		}
	}
	// The pods in as many shares as there are CPUs, each appended by its own goroutine (the head's
	// appenders may run concurrently); a pod's series only ever depend on its own earlier samples.
	workers := runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	var samples atomic.Int64
	first := from + (step-from%step)%step
	for w := 0; w < workers; w++ {
		go func(share []*pod) {
			errs <- appendPods(ctx, writer, share, first, until, step, injected, &samples)
		}(all[w*len(all)/workers : (w+1)*len(all)/workers])
	}
	for w := 0; w < workers; w++ {
		if e := <-errs; e != nil {
			err = e
		}
	}
	if err != nil {
		return 0, err
	}
	if _, err := writer.Flush(ctx); err != nil {
		return 0, err
	}
	return samples.Load(), nil
}

// appendPods appends the scrapes of some pods from `first` to `until`, committing every 100.
func appendPods(ctx context.Context, writer *tsdb.BlockWriter, pods []*pod, first, until, step int64,
	injected faults, samples *atomic.Int64) error {
	var err error
	for t := first; t <= until; {
		app := writer.Appender(ctx)
		batchEnd := min(until, t+100*step)
		for ; t <= batchEnd; t += step {
			for _, p := range pods {
				active := map[string]bool{}
				for _, f := range injected {
					if f.service == p.service && f.start <= t && t < f.end {
						active[f.kind] = true
					}
				}
				p.step(t, float64(step)/1000, active)
				for _, s := range p.allSeries {
					if s.ref, err = app.Append(s.ref, s.labels, t, s.value); err != nil {
						return err
					}
				}
				samples.Add(int64(len(p.allSeries)))
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	return nil
}
