package metadata

// How a Command is stored in the Raft log. Log entries outlive the binary
// that wrote them (a node replays its log after an upgrade), so the format
// carries a leading byte naming the encoding: a later release can move to
// another encoding and still read what this one wrote.
//
// The JSON inside uses Command's field tags and, for the types without tags
// (Map, Shard, Table, keyspace.Range), their Go field names: renaming one of
// those fields changes the log format and needs a new format byte.

import (
	"encoding/json"
	"errors"
	"fmt"
)

// formatJSONv1 is the first byte of a command encoded as JSON.
const formatJSONv1 byte = 1

// lastCommandType is the highest CommandType this build knows; raise it
// when a command is added to command.go.
const lastCommandType = CmdDecideAbort

// errUnknownCommand marks a log entry this build cannot interpret: written
// by a newer release, or corrupt. It is not ErrRejected: a rejection is a
// deterministic decision every node makes alike, while an unknown entry is
// one this node cannot decide at all (see FSM.Apply).
var errUnknownCommand = errors.New("metadata: unknown command")

// Known reports whether this build can apply commands of type t.
func (t CommandType) Known() bool { return t >= CmdSeed && t <= lastCommandType }

// String names the type as the admin API and logs show it.
func (t CommandType) String() string {
	names := [...]string{
		CmdSeed:         "seed",
		CmdAddShard:     "add-shard",
		CmdRemoveShard:  "remove-shard",
		CmdSetHosts:     "set-hosts",
		CmdSetPrimary:   "set-primary",
		CmdAddTable:     "add-table",
		CmdRemoveTable:  "remove-table",
		CmdSplitRange:   "split-range",
		CmdAssignRange:  "assign-range",
		CmdRegisterNode: "register-node",
		CmdRemoveNode:   "remove-node",
		CmdDecideCommit: "decide-commit",
		CmdDecisionDone: "decision-done",
		CmdDecideAbort:  "decide-abort",
	}
	if t.Known() {
		return names[t]
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// EncodeCommand is the Raft log entry for c. It refuses a type this build
// does not know, so an unknown command never reaches the log from here.
func EncodeCommand(c Command) ([]byte, error) {
	if !c.Type.Known() {
		return nil, fmt.Errorf("%w: type %d", errUnknownCommand, uint8(c.Type))
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("metadata: encoding %s: %w", c.Type, err)
	}
	return append([]byte{formatJSONv1}, body...), nil
}

// DecodeCommand reads a log entry written by EncodeCommand. An entry in an
// unknown format, or of an unknown type, is an error wrapping
// errUnknownCommand.
func DecodeCommand(data []byte) (Command, error) {
	if len(data) == 0 {
		return Command{}, fmt.Errorf("%w: empty entry", errUnknownCommand)
	}
	if data[0] != formatJSONv1 {
		return Command{}, fmt.Errorf("%w: format byte %d", errUnknownCommand, data[0])
	}
	var c Command
	if err := json.Unmarshal(data[1:], &c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", errUnknownCommand, err)
	}
	if !c.Type.Known() {
		return Command{}, fmt.Errorf("%w: type %d", errUnknownCommand, uint8(c.Type))
	}
	return c, nil
}
