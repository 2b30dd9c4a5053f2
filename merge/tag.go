package merge

// Command tags for statements that ran on several shards: the client must
// get one CommandComplete whose count is the total (UPDATE 7, not three
// tags), spelled as PostgreSQL spells it.

import (
	"math/bits"
	"strconv"
	"strings"
)

// counted reports whether the tag of command carries a row count.
func counted(command string) bool {
	switch command {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "MERGE", "FETCH", "MOVE":
		return true
	}
	return false
}

// CommandTag returns PostgreSQL's command tag for command affecting n rows:
// "INSERT 0 n" (the oid is always 0), "UPDATE n", "SELECT n", and so on;
// commands without a count are returned as given.
func CommandTag(command string, n int64) string {
	if n < 0 {
		n = 0
	}
	return tagOf(command, uint64(n))
}

func tagOf(command string, n uint64) string {
	up := strings.ToUpper(command)
	if !counted(up) {
		return command
	}
	if up == "INSERT" {
		return "INSERT 0 " + strconv.FormatUint(n, 10)
	}
	return up + " " + strconv.FormatUint(n, 10)
}

// parseTag splits a tag into its command and count; ok is false for a tag
// without a count (CREATE TABLE).
func parseTag(tag string) (command string, n uint64, ok bool, err error) {
	fields := strings.Fields(tag)
	if len(fields) < 2 || !counted(fields[0]) {
		return tag, 0, false, nil
	}
	want := 2
	if fields[0] == "INSERT" {
		want = 3
	}
	if len(fields) != want || (want == 3 && fields[1] != "0") {
		return "", 0, false, internal("unexpected command tag %q", tag)
	}
	n, perr := strconv.ParseUint(fields[want-1], 10, 64)
	if perr != nil {
		return "", 0, false, internal("unexpected command tag %q", tag)
	}
	return fields[0], n, true, nil
}

// SumTags combines the per-shard tags of one statement into the tag the
// client sees: the counts added up. The tags must all be of one command.
func SumTags(tags []string) (string, error) {
	if len(tags) == 0 {
		return "", internal("no command tags to combine")
	}
	cmd0, total, counted0, err := parseTag(tags[0])
	if err != nil {
		return "", err
	}
	for _, t := range tags[1:] {
		cmd, n, ok, err := parseTag(t)
		if err != nil {
			return "", err
		}
		if cmd != cmd0 || ok != counted0 {
			return "", internal("shards answered different commands: %q and %q", tags[0], t)
		}
		var carry uint64
		total, carry = bits.Add64(total, n, 0)
		if carry != 0 {
			return "", internal("row count overflows: %q", t)
		}
	}
	if !counted0 {
		return tags[0], nil
	}
	return tagOf(cmd0, total), nil
}
