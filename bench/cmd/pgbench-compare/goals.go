package main

// This file checks the summary against the performance targets of issue 6
// (called goals here, since "target" is what pgbench connects to): per
// shardproxy target, throughput relative to PgBouncer or to direct, CPU per
// transaction relative to PgBouncer's, and the memory of an idle client.

import (
	"fmt"
	"math"
	"strconv"
)

// tpsGoals are the throughput targets: shardproxy's median TPS
// over the base target's, at least min.
var tpsGoals = []struct {
	workload, base string
	min            float64
}{
	{"select-simple", targetPgBouncer, 1.0},
	{"select-extended", targetPgBouncer, 1.3},
	{"select-prepared", targetDirect, 0.75},
	{"tpcb", targetPgBouncer, 1.0},
}

// goal is one target of the issue evaluated for one shardproxy target.
type goal struct {
	Name   string `json:"goal"`   // "select-simple TPS >= 1.0x PgBouncer"
	Target string `json:"target"` // shardproxy-1shard, ...
	// Value is the measured ratio (or KiB per client); nil when it could
	// not be measured, and Why says why.
	Value  *float64 `json:"value,omitempty"`
	Limit  float64  `json:"limit"`
	AtMost bool     `json:"at_most"` // Value must be <= Limit (else >=)
	Unit   string   `json:"unit"`    // "x" for ratios, " KiB"
	Met    bool     `json:"met"`
	Why    string   `json:"why,omitempty"`
}

// result is "0.82x missed", "21.4 KiB met", or "n/a (why)". A missed
// value that would round onto the limit (or past it) is rounded away from
// it instead, so that "1.00x missed" never appears.
func (g goal) result() string {
	if g.Value == nil {
		return "n/a (" + g.Why + ")"
	}
	v := *g.Value
	s := fmt.Sprintf("%.2f", v)
	if !g.Met {
		shown, _ := strconv.ParseFloat(s, 64)
		switch {
		case g.AtMost && shown <= g.Limit:
			s = fmt.Sprintf("%.2f", math.Ceil(v*100)/100)
		case !g.AtMost && shown >= g.Limit:
			s = fmt.Sprintf("%.2f", math.Floor(v*100)/100)
		}
	}
	verdict := "missed"
	if g.Met {
		verdict = "met"
	}
	return s + g.Unit + " " + verdict
}

// factor writes 1 as "1.0" and 0.75 as "0.75", as the issue does.
func factor(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func newGoal(name, tgt string, value *float64, limit float64, atMost bool, unit, why string) goal {
	g := goal{Name: name, Target: tgt, Value: value, Limit: limit, AtMost: atMost, Unit: unit, Why: why}
	if value != nil {
		g.Met = *value >= limit
		if atMost {
			g.Met = *value <= limit
		}
	}
	return g
}

// evaluateGoals evaluates every goal whose workload was run, for each
// shardproxy target; idle client memory (measured with one shard) goes
// with shardproxy-1shard.
func evaluateGoals(cells []cell, idle []idleResult) []goal {
	find := func(w, t string) *cell {
		for i := range cells {
			if cells[i].Workload == w && cells[i].Target == t {
				return &cells[i]
			}
		}
		return nil
	}
	// missing says why a cell has no number, or "" when it has one.
	missing := func(c *cell) string {
		switch {
		case c == nil || c.Attempts == 0 && c.NA == "":
			return "not run"
		case c.NA != "":
			return c.Target + " cannot run it"
		case c.Runs == 0:
			return "failed via " + c.Target
		}
		return ""
	}
	baseName := map[string]string{targetDirect: "direct", targetPgBouncer: "PgBouncer"}
	var out []goal
	for _, tgt := range goalTargets {
		for _, tg := range tpsGoals {
			sp, base := find(tg.workload, tgt), find(tg.workload, tg.base)
			if sp == nil && base == nil {
				continue // workload not selected
			}
			if runs, _ := targetRuns(tgt, tg.workload); !runs {
				continue
			}
			name := fmt.Sprintf("%s TPS >= %sx %s", tg.workload, factor(tg.min), baseName[tg.base])
			var v *float64
			why := missing(sp)
			if why == "" {
				why = missing(base)
			}
			if why == "" {
				r := sp.TPS / base.TPS
				v = &r
			}
			out = append(out, newGoal(name, tgt, v, tg.min, false, "x", why))
		}
		for _, c := range cells {
			if runs, _ := targetRuns(tgt, c.Workload); c.Target != tgt || !runs {
				continue
			}
			base := find(c.Workload, targetPgBouncer)
			name := fmt.Sprintf("%s proxy CPU/txn <= PgBouncer's", c.Workload)
			var v *float64
			why := missing(&c)
			if why == "" {
				why = missing(base)
			}
			if why == "" {
				if c.ProxyCPUus == nil || base.ProxyCPUus == nil || *base.ProxyCPUus == 0 {
					why = "no CPU figure"
				} else {
					r := *c.ProxyCPUus / *base.ProxyCPUus
					v = &r
				}
			}
			out = append(out, newGoal(name, tgt, v, 1, true, "x", why))
		}
	}
	for _, r := range idle {
		name := fmt.Sprintf("idle client memory (%s, VmRSS) <= %d KiB", r.label(), idleTargetKiB)
		var v *float64
		why := "failed"
		if r.ok() {
			rss, _ := r.perClientKiB()
			v = &rss
		}
		out = append(out, newGoal(name, targetShardproxy1, v, idleTargetKiB, true, " KiB", why))
	}
	return out
}
