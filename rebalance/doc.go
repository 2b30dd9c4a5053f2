// Package rebalance will hold the online range-move state machine (see
// DESIGN.md section 5). It has no code yet.
package rebalance
