package twopc

// Internals the external tests need: a compaction threshold small enough
// to reach, the record count it is measured in, and the literal quoting.

// OpenFileLogCompactingAt opens a FileLog that compacts from n records on.
func OpenFileLogCompactingAt(dir string, n int) (*FileLog, error) { return openFileLog(dir, n) }

// Records returns the number of records in the file and buffer.
func (l *FileLog) Records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}

// QuoteLiteral exposes quoteLiteral.
var QuoteLiteral = quoteLiteral

// EncodeRecord exposes the record encoding for tests that damage files.
func EncodeRecord(commit bool, gid string) []byte {
	typ := recDone
	if commit {
		typ = recCommit
	}
	return appendRecord(nil, typ, gid)
}

// FileMagic is the file header.
const FileMagic = fileMagic

// TornTolerance is how far back damage followed by intact records is
// forgiven.
const TornTolerance = tornTolerance

// IncarnationOf exposes incarnationOf.
var IncarnationOf = incarnationOf
