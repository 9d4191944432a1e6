// Command backtest-rules is what tools/backtest.py needs of the deployed Prometheus' own code: its
// PromQL parser to turn a rule set into expressions a query API can evaluate over a past range
// (`backtest-rules inline`), and its PromQL engine and TSDB to evaluate rules over series the
// backtest holds itself (`backtest-rules evaluate`). Each reads a JSON request on stdin and
// writes a JSON response on stdout.
//
// inline: for every rule, two expressions. The inlined one reads raw series only: each selector of
// a series a recording rule of the set writes is replaced by that rule's own expression
// (recursively), as Prometheus would have computed it at the time the reader looks:
//
//   - an instant selector `record{m}` becomes the recording expression with the matchers m applied
//     to it (pushed down to the raw selectors the label comes from, or decided at once when the
//     expression never yields the label), the rule's labels set, the metric name set, and every
//     selector in it shifted by the selector's offset plus the reader's lag: a reader in the same
//     group after the recording rule sees this evaluation's result, one before it the previous
//     evaluation's, a reader in another group with the same interval the latest sample written
//     before its own evaluation (the groups' phases come with the request);
//   - a range selector `record{m}[w]` becomes a subquery `(...)[w:interval]` of the same at the
//     recording group's interval;
//   - several recording rules writing one name are joined with `or`, as the union of their series.
//
// The local one is the rule's own expression, for an engine that holds the recorded series it
// reads, written at their groups' own evaluation times. With it: how far back the rule reads
// each recorded series and the raw series it reads. And one line per rule that does not parse or
// cannot be inlined.
//
// evaluate: see evaluate.go.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "inline" && os.Args[1] != "evaluate") {
		fmt.Fprintln(os.Stderr, "usage: backtest-rules inline|evaluate < request.json > response.json")
		os.Exit(2)
	}
	var out any
	var err error
	if os.Args[1] == "inline" {
		var req request
		if err = json.NewDecoder(os.Stdin).Decode(&req); err == nil {
			out = run(req)
		}
	} else {
		var req evalRequest
		if err = json.NewDecoder(os.Stdin).Decode(&req); err == nil {
			out = evaluate(req)
		}
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "backtest-rules %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
}
