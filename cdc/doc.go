// Package cdc will publish committed row changes to Kafka (DESIGN.md
// section 6). It has no code yet.
package cdc
