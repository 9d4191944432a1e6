package main

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type rule struct {
	Record string            `json:"record"`
	Alert  string            `json:"alert"`
	Expr   string            `json:"expr"`
	Labels map[string]string `json:"labels"`
}

type group struct {
	Name       string `json:"name"`
	IntervalMs int64  `json:"interval_ms"`
	// File: the rule file a Prometheus loaded the group from; when given, the phase is that
	// Prometheus' own (EvalTimestamp: the hash of the group's name and file, modulo its interval).
	File          string `json:"file"`
	PhaseMs       int64  `json:"phase_ms"`
	QueryOffsetMs int64  `json:"query_offset_ms"`
	Rules         []rule `json:"rules"`
}

type request struct {
	Groups []group `json:"groups"`
	// Matchers added to every selector of a raw series, e.g. `cluster="prod"` to read one
	// cluster's series out of a long-term store several clusters write to.
	Matchers              []string `json:"matchers"`
	LookbackDeltaMs       int64    `json:"lookback_delta_ms"`
	ExperimentalFunctions bool     `json:"experimental_functions"`
}

// ruleOut is one rule of the set, as the backtest evaluates it either way: over raw series at the
// source (Inlined), or over series the backtest holds itself (Local).
type ruleOut struct {
	Group string `json:"group"`
	Index int    `json:"index"`
	Name  string `json:"name"`
	Alert bool   `json:"alert"`
	// Inlined reads raw series only: every recorded series replaced by its recording expression.
	Inlined    string   `json:"inlined"`
	LookbackMs int64    `json:"lookback_ms"`
	Metrics    []string `json:"metrics"`
	// Local is the rule's own expression, for an engine holding the recorded series it reads
	// written at their own groups' evaluation times: a recorded series written later in the same
	// group is read as of the previous evaluation (1ms earlier than this one).
	Local string `json:"local"`
	// Reads: every recorded series the rule reads, and how far back before an evaluation.
	Reads map[string]int64 `json:"reads"`
	// RawInstant: the raw series it reads by instant selectors (each as a selector, the extra
	// matchers applied); RawRange: it also reads raw series over a range, a subquery or an offset.
	RawInstant []string `json:"raw_instant"`
	RawRange   bool     `json:"raw_range"`
}

type response struct {
	Rules  []ruleOut `json:"rules"`
	Errors []string  `json:"errors"`
	// PhasesMs: by group, its evaluation times' offset from the multiples of its interval.
	PhasesMs map[string]int64 `json:"phases_ms"`
}

type ref struct{ group, index int }

type inliner struct {
	req     request
	parser  parser.Parser
	records map[string][]ref
	extra   []*labels.Matcher
}

// timeFunctions read the evaluation time: shifted in time, they must read it shifted too.
var timeFunctions = map[string]bool{
	"minute": true, "hour": true, "day_of_week": true, "day_of_month": true, "day_of_year": true,
	"days_in_month": true, "month": true, "year": true,
}

// labelPreserving functions return their vector argument's series with their labels (the metric
// name aside): a label matcher applies before them as after.
var labelPreserving = map[string]bool{}

func init() {
	for _, name := range strings.Fields(`abs acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
		clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month day_of_week day_of_year deg delta
		deriv exp first_over_time floor histogram_avg histogram_count histogram_sum histogram_stddev
		histogram_stdvar idelta increase irate last_over_time ln mad_over_time max_over_time min_over_time
		ts_of_first_over_time ts_of_max_over_time ts_of_min_over_time ts_of_last_over_time minute month hour
		predict_linear present_over_time quantile_over_time rad rate resets round sgn sin sinh sort sort_desc
		sort_by_label sort_by_label_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh timestamp
		year double_exponential_smoothing`) {
		labelPreserving[name] = true
	}
}

func ruleName(r rule) string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

func run(req request) response {
	in := &inliner{
		req:     req,
		parser:  parser.NewParser(parser.Options{EnableExperimentalFunctions: req.ExperimentalFunctions}),
		records: map[string][]ref{},
	}
	out := response{Rules: []ruleOut{}, Errors: []string{}, PhasesMs: map[string]int64{}}
	for i, grp := range req.Groups {
		if grp.File != "" && grp.IntervalMs > 0 {
			hash := labels.New(labels.Label{Name: "name", Value: grp.Name}, labels.Label{Name: "file", Value: grp.File}).Hash()
			req.Groups[i].PhaseMs = int64(hash%uint64(ms(grp.IntervalMs))) / int64(time.Millisecond)
		}
		out.PhasesMs[grp.Name] = req.Groups[i].PhaseMs
	}
	in.req = req
	for _, text := range req.Matchers {
		matchers, err := in.parser.ParseMetricSelector("{" + text + "}")
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("matcher %s: %v", text, err))
			continue
		}
		for _, m := range matchers {
			if m.Type == labels.MatchEqual {
				// As a regex: absent() builds its labels from the equality matchers of its
				// argument, and the alert's labels must not change with where the series are read.
				m = labels.MustNewMatcher(labels.MatchRegexp, m.Name, regexp.QuoteMeta(m.Value))
			}
			in.extra = append(in.extra, m)
		}
	}
	for g, grp := range req.Groups {
		for i, r := range grp.Rules {
			if _, err := in.parser.ParseExpr(r.Expr); err != nil {
				out.Errors = append(out.Errors, fmt.Sprintf("group %s, rule %d (%s): %s", grp.Name, i+1, ruleName(r), oneLine(err)))
			}
			if r.Record != "" {
				in.records[r.Record] = append(in.records[r.Record], ref{g, i})
			}
		}
	}
	if len(out.Errors) > 0 {
		return out
	}
	for g, grp := range req.Groups {
		for i, r := range grp.Rules {
			rule, err := in.describe(ref{g, i})
			if err != nil {
				out.Errors = append(out.Errors, fmt.Sprintf("group %s, rule %d (%s): %s", grp.Name, i+1, ruleName(r), oneLine(err)))
				continue
			}
			out.Rules = append(out.Rules, rule)
		}
	}
	return out
}

// describe is everything the backtest needs of one rule.
func (in *inliner) describe(at ref) (ruleOut, error) {
	grp, r := in.req.Groups[at.group], in.rule(at)
	e, err := in.expand(in.parse(r.Expr), at, true, nil)
	if err == nil && r.Alert != "" && grp.QueryOffsetMs != 0 {
		e, err = shift(e, ms(grp.QueryOffsetMs))
	}
	if err != nil {
		return ruleOut{}, err
	}
	out := ruleOut{Group: grp.Name, Index: at.index, Name: ruleName(r), Alert: r.Alert != "", Inlined: e.String(),
		LookbackMs: lookback(e, ms(in.req.LookbackDeltaMs)).Milliseconds(), Metrics: metrics(e),
		Reads: map[string]int64{}, RawInstant: []string{}}
	local := in.parse(r.Expr)
	in.local(local, at, 0, false, &out)
	if r.Alert != "" && grp.QueryOffsetMs != 0 {
		if local, err = shift(local, ms(grp.QueryOffsetMs)); err != nil {
			return ruleOut{}, err
		}
	}
	out.Local = local.String()
	return out, nil
}

// local prepares the rule's own expression for an engine holding its recorded inputs, and notes
// what it reads: `back` is how far before the evaluation the enclosing subqueries reach, `ranged`
// whether a subquery encloses the node.
func (in *inliner) local(node parser.Node, at ref, back time.Duration, ranged bool, out *ruleOut) {
	switch n := node.(type) {
	case *parser.SubqueryExpr:
		in.local(n.Expr, at, back+n.OriginalOffset+n.Range, true, out)
		return
	case *parser.MatrixSelector:
		vs := n.VectorSelector.(*parser.VectorSelector)
		in.read(vs, at, back+n.Range, true, out)
		return
	case *parser.VectorSelector:
		in.read(n, at, back+ms(in.req.LookbackDeltaMs), ranged, out)
		return
	}
	for _, child := range parser.Children(node) {
		in.local(child, at, back, ranged, out)
	}
}

func (in *inliner) read(vs *parser.VectorSelector, at ref, back time.Duration, ranged bool, out *ruleOut) {
	name := in.recorded(vs)
	if name == "" {
		in.addExtra(vs)
		if ranged || vs.OriginalOffset != 0 || vs.OriginalOffsetExpr != nil || vs.Timestamp != nil || vs.StartOrEnd != 0 {
			out.RawRange = true
		} else if !slices.Contains(out.RawInstant, vs.String()) {
			out.RawInstant = append(out.RawInstant, vs.String())
		}
		return
	}
	for _, w := range in.records[name] {
		if w.group == at.group && w.index >= at.index {
			vs.OriginalOffset += time.Millisecond // written after the reader: the previous evaluation's
			break
		}
	}
	out.Reads[name] = max(out.Reads[name], (back + vs.OriginalOffset).Milliseconds())
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func (in *inliner) parse(text string) parser.Expr {
	e, err := in.parser.ParseExpr(text)
	if err != nil {
		panic(err) // every rule was parsed once already
	}
	return e
}

func (in *inliner) rule(r ref) rule { return in.req.Groups[r.group].Rules[r.index] }

// recorded is the name a selector reads when a recording rule of the set writes it.
func (in *inliner) recorded(vs *parser.VectorSelector) string {
	name := vs.Name
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	if _, ok := in.records[name]; ok {
		return name
	}
	return ""
}

// lag is how long before a reader's evaluation the recording rule `written` last wrote.
func (in *inliner) lag(reader, written ref) time.Duration {
	r, w := in.req.Groups[reader.group], in.req.Groups[written.group]
	if reader.group == written.group {
		if written.index < reader.index {
			return 0
		}
		return ms(r.IntervalMs) // written after the reader: it reads the previous evaluation
	}
	if r.IntervalMs != w.IntervalMs || r.IntervalMs == 0 {
		return 0
	}
	d := ((r.PhaseMs - r.QueryOffsetMs) - (w.PhaseMs - w.QueryOffsetMs)) % r.IntervalMs
	if d < 0 {
		d += r.IntervalMs
	}
	return ms(d)
}

// expand replaces every recorded series `e` reads by its recording expression. `top`: `e` is
// evaluated at the reader's evaluation times (not inside a subquery), where the lag applies.
func (in *inliner) expand(e parser.Expr, reader ref, top bool, stack []string) (parser.Expr, error) {
	var err error
	switch n := e.(type) {
	case *parser.ParenExpr:
		n.Expr, err = in.expand(n.Expr, reader, top, stack)
	case *parser.UnaryExpr:
		n.Expr, err = in.expand(n.Expr, reader, top, stack)
	case *parser.BinaryExpr:
		if n.LHS, err = in.expand(n.LHS, reader, top, stack); err == nil {
			n.RHS, err = in.expand(n.RHS, reader, top, stack)
		}
	case *parser.AggregateExpr:
		if n.Expr, err = in.expand(n.Expr, reader, top, stack); err == nil && n.Param != nil {
			n.Param, err = in.expand(n.Param, reader, top, stack)
		}
	case *parser.Call:
		switch n.Func.Name {
		case "start", "end", "range", "step":
			return nil, fmt.Errorf("%s() reads the query's own range, which a rule evaluation does not have", n.Func.Name)
		}
		for i := range n.Args {
			if n.Args[i], err = in.expand(n.Args[i], reader, top, stack); err != nil {
				break
			}
		}
	case *parser.SubqueryExpr:
		n.Expr, err = in.expand(n.Expr, reader, false, stack)
	case *parser.MatrixSelector:
		vs := n.VectorSelector.(*parser.VectorSelector)
		name := in.recorded(vs)
		if name == "" {
			in.addExtra(vs)
			return n, nil
		}
		if vs.OriginalOffsetExpr != nil || n.RangeExpr != nil || vs.Anchored || vs.Smoothed {
			return nil, fmt.Errorf("%s: duration expressions and range modifiers on a recorded series cannot be inlined", n)
		}
		offset, at, end := vs.OriginalOffset, vs.Timestamp, vs.StartOrEnd
		vs.OriginalOffset, vs.Timestamp, vs.StartOrEnd = 0, nil, 0
		instant, err := in.instant(vs, name, reader, false, stack)
		if err != nil {
			return nil, err
		}
		return &parser.SubqueryExpr{Expr: instant, Range: n.Range, Step: in.step(name),
			OriginalOffset: offset, Timestamp: at, StartOrEnd: end}, nil
	case *parser.VectorSelector:
		name := in.recorded(n)
		if name == "" {
			in.addExtra(n)
			return n, nil
		}
		if n.Timestamp != nil || n.StartOrEnd != 0 || n.OriginalOffsetExpr != nil {
			return nil, fmt.Errorf("%s: an @ modifier or a duration expression on a recorded series cannot be inlined", n)
		}
		return in.instant(n, name, reader, top, stack)
	}
	return e, err
}

func (in *inliner) addExtra(vs *parser.VectorSelector) {
	for _, m := range in.extra {
		vs.LabelMatchers = append(vs.LabelMatchers, m)
	}
}

// step is the evaluation interval of the recording rules writing `name` (the shortest).
func (in *inliner) step(name string) time.Duration {
	var step int64
	for _, r := range in.records[name] {
		if iv := in.req.Groups[r.group].IntervalMs; step == 0 || iv < step {
			step = iv
		}
	}
	return ms(step)
}

// instant is what the instant selector `vs` of the recorded `name` returns, as one expression.
func (in *inliner) instant(vs *parser.VectorSelector, name string, reader ref, top bool, stack []string) (parser.Expr, error) {
	if slices.Contains(stack, name) {
		return nil, fmt.Errorf("recording rules read each other in a cycle: %s -> %s", strings.Join(stack, " -> "), name)
	}
	stack = append(stack, name)
	var matchers []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name != labels.MetricName {
			matchers = append(matchers, m)
		}
	}
	var parts []parser.Expr
	for _, w := range in.records[name] {
		r := in.rule(w)
		var remaining []*labels.Matcher
		matched := true
		for _, m := range matchers {
			if v, ok := r.Labels[m.Name]; ok {
				matched = matched && m.Matches(v)
			} else {
				remaining = append(remaining, m)
			}
		}
		if !matched {
			continue
		}
		e := in.parse(r.Expr)
		var err error
		for _, m := range remaining {
			if e, err = in.push(e, m, stack); err != nil {
				return nil, fmt.Errorf("%s{%s}: %w", name, m, err)
			}
		}
		if e == nil { // a matcher no series of this rule can match
			continue
		}
		if e, err = in.expand(e, w, true, stack); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(r.Labels))
		for k := range r.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e = labelReplace(e, k, r.Labels[k])
		}
		e = labelReplace(e, labels.MetricName, name)
		offset := vs.OriginalOffset
		if top {
			offset += in.lag(reader, w)
		}
		if e, err = shift(e, offset); err != nil {
			return nil, err
		}
		parts = append(parts, e)
	}
	if len(parts) == 0 {
		return in.parse("vector(1) != 1"), nil // no rule writes a series these matchers select
	}
	union := parts[0]
	for _, p := range parts[1:] {
		union = &parser.BinaryExpr{Op: parser.LOR, LHS: union, RHS: p,
			VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany}}
	}
	return &parser.ParenExpr{Expr: union}, nil
}

// labelReplace sets a label on every series of `e` (a regex "" matches the empty source value).
func labelReplace(e parser.Expr, name, value string) parser.Expr {
	return &parser.Call{Func: parser.Functions["label_replace"], Args: parser.Expressions{
		e, &parser.StringLiteral{Val: name}, &parser.StringLiteral{Val: strings.ReplaceAll(value, "$", "$$")},
		&parser.StringLiteral{Val: ""}, &parser.StringLiteral{Val: ""},
	}}
}

// shift moves every evaluation `e` makes `d` earlier, as `e offset d` would if PromQL allowed it:
// offsets of selectors and subqueries add up, and the evaluation time functions read shift too.
func shift(e parser.Expr, d time.Duration) (parser.Expr, error) {
	if d == 0 {
		return e, nil
	}
	var err error
	switch n := e.(type) {
	case *parser.ParenExpr:
		n.Expr, err = shift(n.Expr, d)
	case *parser.UnaryExpr:
		n.Expr, err = shift(n.Expr, d)
	case *parser.BinaryExpr:
		if n.LHS, err = shift(n.LHS, d); err == nil {
			n.RHS, err = shift(n.RHS, d)
		}
	case *parser.AggregateExpr:
		if n.Expr, err = shift(n.Expr, d); err == nil && n.Param != nil {
			n.Param, err = shift(n.Param, d)
		}
	case *parser.Call:
		if n.Func.Name == "time" {
			return &parser.ParenExpr{Expr: &parser.BinaryExpr{Op: parser.SUB, LHS: n,
				RHS: &parser.NumberLiteral{Val: d.Seconds()}}}, nil
		}
		if timeFunctions[n.Func.Name] && len(n.Args) == 0 {
			now, _ := shift(&parser.Call{Func: parser.Functions["time"]}, d)
			n.Args = parser.Expressions{&parser.Call{Func: parser.Functions["vector"], Args: parser.Expressions{now}}}
			return n, nil
		}
		for i := range n.Args {
			if n.Args[i], err = shift(n.Args[i], d); err != nil {
				break
			}
		}
	case *parser.SubqueryExpr:
		if n.OriginalOffsetExpr != nil {
			return nil, fmt.Errorf("%s: a duration expression cannot be shifted", n)
		}
		n.OriginalOffset += d // the subquery's offset moves everything inside it
	case *parser.MatrixSelector:
		_, err = shift(n.VectorSelector, d)
	case *parser.VectorSelector:
		if n.OriginalOffsetExpr != nil {
			return nil, fmt.Errorf("%s: a duration expression cannot be shifted", n)
		}
		n.OriginalOffset += d
	}
	return e, err
}

// push applies the matcher `m` to what `e` returns. nil: no series of `e` can match.
func (in *inliner) push(e parser.Expr, m *labels.Matcher, stack []string) (parser.Expr, error) {
	if in.absent(e, m.Name, stack) {
		if m.Matches("") {
			return e, nil
		}
		return nil, nil
	}
	var err error
	switch n := e.(type) {
	case *parser.ParenExpr:
		if n.Expr, err = in.push(n.Expr, m, stack); n.Expr == nil {
			return nil, err
		}
		return n, err
	case *parser.UnaryExpr:
		if n.Expr, err = in.push(n.Expr, m, stack); n.Expr == nil {
			return nil, err
		}
		return n, err
	case *parser.VectorSelector:
		n.LabelMatchers = append(n.LabelMatchers, m)
		return n, nil
	case *parser.MatrixSelector:
		_, err = in.push(n.VectorSelector, m, stack)
		return n, err
	case *parser.SubqueryExpr:
		if n.Expr, err = in.push(n.Expr, m, stack); n.Expr == nil {
			return nil, err
		}
		return n, err
	case *parser.AggregateExpr:
		if n.Op == parser.COUNT_VALUES {
			break
		}
		// The label is kept by the grouping (else it would be absent): filtering the input
		// filters whole groups.
		if n.Expr, err = in.push(n.Expr, m, stack); n.Expr == nil {
			return nil, err
		}
		return n, err
	case *parser.Call:
		if !labelPreserving[n.Func.Name] && n.Func.Name != "label_replace" && n.Func.Name != "label_join" &&
			n.Func.Name != "histogram_quantile" && n.Func.Name != "histogram_fraction" {
			break
		}
		if (n.Func.Name == "label_replace" || n.Func.Name == "label_join") && n.Args[1].(*parser.StringLiteral).Val == m.Name {
			break
		}
		for i, arg := range n.Args {
			if t := arg.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				if n.Args[i], err = in.push(arg, m, stack); n.Args[i] == nil {
					return nil, err
				}
			}
		}
		return n, err
	case *parser.BinaryExpr:
		lhs, rhs := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		if !lhs || !rhs { // against a scalar: the vector side's series
			side := &n.LHS
			if rhs {
				side = &n.RHS
			}
			if *side, err = in.push(*side, m, stack); *side == nil {
				return nil, err
			}
			return n, err
		}
		vm := n.VectorMatching
		matching := (vm.On && slices.Contains(vm.MatchingLabels, m.Name)) || (!vm.On && !slices.Contains(vm.MatchingLabels, m.Name))
		switch {
		case n.Op == parser.LAND || n.Op == parser.LUNLESS:
			// The result is the left side's series; the right side only when the label is matched on.
			if n.LHS, err = in.push(n.LHS, m, stack); n.LHS == nil || err != nil {
				return nil, err
			}
			if matching {
				if n.RHS, err = in.push(n.RHS, m, stack); n.RHS == nil && n.Op == parser.LAND {
					return nil, err
				} else if n.RHS == nil {
					return n.LHS, err
				}
			}
			return n, err
		case matching && (n.Op == parser.LOR || vm.Card == parser.CardOneToOne):
			// Both sides carry the label and pair on it: filter both.
			l, errL := in.push(n.LHS, m, stack)
			r, errR := in.push(n.RHS, m, stack)
			if errL != nil || errR != nil {
				return nil, fmt.Errorf("%v %v", errL, errR)
			}
			switch {
			case l == nil && r == nil:
				return nil, nil
			case n.Op == parser.LOR && l == nil:
				return r, nil
			case n.Op == parser.LOR && r == nil:
				return l, nil
			case l == nil || r == nil:
				return nil, nil
			}
			n.LHS, n.RHS = l, r
			return n, nil
		case vm.Card == parser.CardManyToOne && !slices.Contains(vm.Include, m.Name):
			if n.LHS, err = in.push(n.LHS, m, stack); n.LHS == nil {
				return nil, err
			}
			return n, err
		case vm.Card == parser.CardOneToMany && !slices.Contains(vm.Include, m.Name):
			if n.RHS, err = in.push(n.RHS, m, stack); n.RHS == nil {
				return nil, err
			}
			return n, err
		}
	}
	return nil, fmt.Errorf("cannot apply the matcher to the recording expression at %s", e)
}

// absent: no series `e` returns carries the label `name`.
func (in *inliner) absent(e parser.Expr, name string, stack []string) bool {
	switch n := e.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return true
	case *parser.ParenExpr:
		return in.absent(n.Expr, name, stack)
	case *parser.UnaryExpr:
		return in.absent(n.Expr, name, stack)
	case *parser.SubqueryExpr:
		return in.absent(n.Expr, name, stack)
	case *parser.MatrixSelector:
		return in.absent(n.VectorSelector, name, stack)
	case *parser.VectorSelector:
		record := in.recorded(n)
		if record == "" || slices.Contains(stack, record) {
			return false
		}
		for _, w := range in.records[record] {
			r := in.rule(w)
			if _, ok := r.Labels[name]; ok || !in.absent(in.parse(r.Expr), name, append(stack, record)) {
				return false
			}
		}
		return true
	case *parser.AggregateExpr:
		if n.Op == parser.COUNT_VALUES {
			if s, ok := n.Param.(*parser.StringLiteral); ok && s.Val == name {
				return false
			}
		}
		if n.Without {
			return slices.Contains(n.Grouping, name) || in.absent(n.Expr, name, stack)
		}
		return !slices.Contains(n.Grouping, name)
	case *parser.Call:
		switch n.Func.Name {
		case "vector", "time", "scalar", "pi":
			return true
		case "label_replace", "label_join":
			return n.Args[1].(*parser.StringLiteral).Val != name && in.absent(n.Args[0], name, stack)
		case "histogram_quantile", "histogram_fraction":
			return name == "le" || in.absent(n.Args[len(n.Args)-1], name, stack)
		}
		if !labelPreserving[n.Func.Name] {
			return false
		}
		for _, arg := range n.Args {
			if t := arg.Type(); (t == parser.ValueTypeVector || t == parser.ValueTypeMatrix) && !in.absent(arg, name, stack) {
				return false
			}
		}
		return true
	case *parser.BinaryExpr:
		lhs, rhs := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		switch {
		case !lhs && !rhs:
			return true
		case !rhs:
			return in.absent(n.LHS, name, stack)
		case !lhs:
			return in.absent(n.RHS, name, stack)
		}
		vm := n.VectorMatching
		switch {
		case n.Op == parser.LOR:
			return in.absent(n.LHS, name, stack) && in.absent(n.RHS, name, stack)
		case n.Op.IsSetOperator():
			return in.absent(n.LHS, name, stack)
		case vm.Card == parser.CardOneToOne && vm.On:
			return !slices.Contains(vm.MatchingLabels, name) || in.absent(n.LHS, name, stack)
		case vm.Card == parser.CardOneToOne:
			return slices.Contains(vm.MatchingLabels, name) || in.absent(n.LHS, name, stack)
		case slices.Contains(vm.Include, name):
			one := n.RHS
			if vm.Card == parser.CardOneToMany {
				one = n.LHS
			}
			return in.absent(one, name, stack)
		case vm.Card == parser.CardManyToOne:
			return in.absent(n.LHS, name, stack)
		default:
			return in.absent(n.RHS, name, stack)
		}
	}
	return false
}

// lookback is how long before its evaluation time `e` reads samples.
func lookback(e parser.Expr, delta time.Duration) time.Duration {
	switch n := e.(type) {
	case *parser.VectorSelector:
		return max(0, n.OriginalOffset+delta)
	case *parser.MatrixSelector:
		return max(0, n.VectorSelector.(*parser.VectorSelector).OriginalOffset+n.Range)
	case *parser.SubqueryExpr:
		return max(0, n.OriginalOffset+n.Range+lookback(n.Expr, delta))
	}
	var longest time.Duration
	for _, child := range parser.Children(e) {
		if c, ok := child.(parser.Expr); ok {
			longest = max(longest, lookback(c, delta))
		}
	}
	return longest
}

// metrics are the names of the raw series `e` reads, sorted.
func metrics(e parser.Expr) []string {
	found := map[string]bool{}
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if name == "" && m.Name == labels.MetricName {
					name = "{" + m.String() + "}"
				}
			}
			found[name] = true
		}
		return nil
	})
	names := make([]string, 0, len(found))
	for name := range found {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
