package twopc

// One phase of the protocol on every participant: pipelined when they all
// can take it (each statement sent before any answer is read, so the phase
// costs one round trip rather than one per participant), else one after
// another.

import "context"

// Pipeliner is a Participant that can send a statement and read its
// answer apart, in the order sent.
type Pipeliner interface {
	Send(ctx context.Context, sql string) error
	Receive(ctx context.Context) (tag string, err error)
}

// outcome is what one participant made of a phase's statement.
type outcome struct {
	ran bool // the statement was sent (it may have taken effect)
	tag string
	err error // the server's or the connection's, or tagError
}

// ok: the statement ran and answered the tag asked for.
func (o outcome) ok() bool { return o.ran && o.err == nil }

// runPhase runs sqlFor(i) on ps[i] (skipped when it returns ""), checking
// each answer against want ("" accepts any tag). One after another, it
// stops at the first failure when stopAtFailure: what follows is not sent.
// Pipelined, everything is sent: each participant has its own connection,
// and a failure on one says nothing about the others.
func runPhase(ctx context.Context, ps []Participant, sqlFor func(i int) string, want string, stopAtFailure bool) []outcome {
	out := make([]outcome, len(ps))
	finish := func(i int, tag string, err error) {
		if err == nil && want != "" && tag != want {
			err = tagError(tag)
		}
		out[i] = outcome{ran: true, tag: tag, err: err}
	}
	if pipeliners, ok := allPipeliners(ps); ok {
		sent := make([]bool, len(ps))
		for i, p := range pipeliners {
			sql := sqlFor(i)
			if sql == "" {
				continue
			}
			if err := p.Send(ctx, sql); err != nil {
				finish(i, "", err)
				continue
			}
			sent[i] = true
		}
		for i, p := range pipeliners {
			if sent[i] {
				tag, err := p.Receive(ctx)
				finish(i, tag, err)
			}
		}
		return out
	}
	for i, p := range ps {
		sql := sqlFor(i)
		if sql == "" {
			continue
		}
		tag, err := p.Exec(ctx, sql)
		finish(i, tag, err)
		if stopAtFailure && !out[i].ok() {
			break
		}
	}
	return out
}

func allPipeliners(ps []Participant) ([]Pipeliner, bool) {
	out := make([]Pipeliner, len(ps))
	for i, p := range ps {
		pp, ok := p.(Pipeliner)
		if !ok {
			return nil, false
		}
		out[i] = pp
	}
	return out, true
}

// firstFailure is the index of the first outcome that ran and failed, or -1.
func firstFailure(outs []outcome) int {
	for i, o := range outs {
		if o.ran && o.err != nil {
			return i
		}
	}
	return -1
}
