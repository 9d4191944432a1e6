package main

// evaluate: the deployed Prometheus' PromQL engine over a TSDB of the backtest's own, in a
// temporary folder. The request brings series (recorded series the source computed, and raw
// series as an instant selector saw them, each sampled on a grid of evaluation times), then steps
// in order: a recording rule is evaluated over its group's evaluation times and its result
// written back as Prometheus writes it (its name and labels set; a stale marker at the first
// evaluation a series is missing from), so that later steps read it; an alerting rule is
// evaluated likewise and its result returned: at which evaluation times each label set was there.

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
)

type gridSeries struct {
	Labels map[string]string `json:"labels"`
	Times  []int64           `json:"times"`
	// Values as the query API writes them ("0.5", "NaN", "+Inf"); null is a stale marker.
	Values []*string `json:"values"`
}

type evalStep struct {
	ID     int               `json:"id"`
	Record string            `json:"record"`
	Labels map[string]string `json:"labels"`
	Expr   string            `json:"expr"`
	Start  int64             `json:"start_ms"`
	End    int64             `json:"end_ms"`
	Step   int64             `json:"step_ms"`
}

type evalRequest struct {
	LookbackDeltaMs       int64        `json:"lookback_delta_ms"`
	MaxSamples            int          `json:"max_samples"`
	ExperimentalFunctions bool         `json:"experimental_functions"`
	Series                []gridSeries `json:"series"`
	Steps                 []evalStep   `json:"steps"`
}

type present struct {
	Labels map[string]string `json:"labels"`
	Times  []int64           `json:"times"`
}

type evalResponse struct {
	// Alerts: by step id, the result series of each alerting rule's expression.
	Alerts map[int][]present `json:"alerts"`
	Errors []string          `json:"errors"`
}

func evaluate(req evalRequest) evalResponse {
	out := evalResponse{Alerts: map[int][]present{}, Errors: []string{}}
	fail := func(err error) evalResponse {
		out.Errors = append(out.Errors, strings.Join(strings.Fields(err.Error()), " "))
		return out
	}
	dir, err := os.MkdirTemp("", "backtest-rules-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	opts := tsdb.DefaultOptions()
	// One head for the whole range: every sample appendable whatever its time, no compaction.
	year := int64(366 * 24 * time.Hour / time.Millisecond)
	opts.MinBlockDuration, opts.MaxBlockDuration, opts.RetentionDuration = year, year, 2*year
	opts.OutOfOrderTimeWindow = year
	db, err := tsdb.Open(dir, nil, nil, opts, nil)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	ctx := context.Background()
	app := db.Appender(ctx)
	for _, s := range req.Series {
		lbls := labels.FromMap(s.Labels)
		for i, t := range s.Times {
			v := math.Float64frombits(value.StaleNaN)
			if s.Values[i] != nil {
				if v, err = strconv.ParseFloat(*s.Values[i], 64); err != nil {
					return fail(fmt.Errorf("series %s at %d: %w", lbls, t, err))
				}
			}
			if _, err := app.Append(0, lbls, t, v); err != nil {
				return fail(fmt.Errorf("series %s at %d: %w", lbls, t, err))
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fail(err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: req.MaxSamples, Timeout: time.Hour, LookbackDelta: ms(req.LookbackDeltaMs),
		EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return req.Steps[0].Step },
		Parser:                   parser.NewParser(parser.Options{EnableExperimentalFunctions: req.ExperimentalFunctions}),
	})
	for _, step := range req.Steps {
		query, err := engine.NewRangeQuery(ctx, db, nil, step.Expr, time.UnixMilli(step.Start), time.UnixMilli(step.End),
			ms(step.Step))
		if err != nil {
			return fail(fmt.Errorf("%s: %w", step.Expr, err))
		}
		result := query.Exec(ctx)
		if result.Err != nil {
			query.Close()
			return fail(fmt.Errorf("%s: %w", step.Expr, result.Err))
		}
		matrix, _ := result.Matrix()
		if step.Record == "" {
			found := make([]present, 0, len(matrix))
			for _, series := range matrix {
				p := present{Labels: series.Metric.Map()}
				for _, point := range series.Floats {
					p.Times = append(p.Times, point.T)
				}
				found = append(found, p)
			}
			out.Alerts[step.ID] = found
		} else if err := write(db, ctx, step, matrix); err != nil {
			query.Close()
			return fail(err)
		}
		query.Close()
	}
	return out
}

// write appends a recording rule's result as Prometheus' rule manager writes it.
func write(db *tsdb.DB, ctx context.Context, step evalStep, matrix promql.Matrix) error {
	app := db.Appender(ctx)
	for _, series := range matrix {
		b := labels.NewBuilder(series.Metric)
		b.Set(labels.MetricName, step.Record)
		names := make([]string, 0, len(step.Labels))
		for name := range step.Labels {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			b.Set(name, step.Labels[name]) // an empty value removes the label
		}
		lbls := b.Labels()
		last := int64(math.MinInt64)
		for _, point := range series.Floats {
			if last != math.MinInt64 && point.T-last > step.Step {
				if _, err := app.Append(0, lbls, last+step.Step, math.Float64frombits(value.StaleNaN)); err != nil {
					return err
				}
			}
			if _, err := app.Append(0, lbls, point.T, point.F); err != nil {
				return fmt.Errorf("%s at %d: %w", lbls, point.T, err)
			}
			last = point.T
		}
		if last != math.MinInt64 && last+step.Step <= step.End {
			if _, err := app.Append(0, lbls, last+step.Step, math.Float64frombits(value.StaleNaN)); err != nil {
				return err
			}
		}
	}
	return app.Commit()
}
