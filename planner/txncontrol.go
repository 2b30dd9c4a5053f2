package planner

// Recognizing the bare transaction-control statements a pooler may answer
// itself (the router's deferred BEGIN), without lexing or allocating.

// TxnControl is a bare transaction-control statement.
type TxnControl uint8

const (
	NotTxnControl TxnControl = iota
	TxnBegin                 // BEGIN, BEGIN WORK|TRANSACTION
	TxnStart                 // START TRANSACTION (its own tag)
	TxnCommit                // COMMIT, END [WORK|TRANSACTION]
	TxnRollback              // ROLLBACK, ABORT [WORK|TRANSACTION]
)

// BareTransactionControl recognizes a query string that is one
// transaction-control statement without options: no isolation level, no
// AND CHAIN, no comment, nothing but spaces and semicolons around it.
// Anything else, including text that only looks like one, is
// NotTxnControl: the caller then treats it as an ordinary statement, so
// being strict can only cost speed.
func BareTransactionControl(sql string) TxnControl {
	var words [3]string
	n := 0
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case isSpaceByte(c) || c == ';':
			if c == ';' {
				// Only spaces and semicolons may follow.
				for i++; i < len(sql); i++ {
					if !isSpaceByte(sql[i]) && sql[i] != ';' {
						return NotTxnControl
					}
				}
				return bareControl(words[:n])
			}
			i++
		case c < 0x80 && isIdentStart(c):
			j := i
			for j < len(sql) && sql[j] < 0x80 && isIdentPart(sql[j]) {
				j++
			}
			if n == len(words) {
				return NotTxnControl
			}
			words[n] = sql[i:j]
			n++
			i = j
		default:
			return NotTxnControl
		}
	}
	return bareControl(words[:n])
}

func bareControl(words []string) TxnControl {
	if len(words) == 0 || len(words) > 2 {
		return NotTxnControl
	}
	tail := len(words) == 1 || equalFoldASCII(words[1], "transaction") || equalFoldASCII(words[1], "work")
	first := words[0]
	switch {
	case equalFoldASCII(first, "begin") && tail:
		return TxnBegin
	case equalFoldASCII(first, "start") && len(words) == 2 && equalFoldASCII(words[1], "transaction"):
		return TxnStart
	case (equalFoldASCII(first, "commit") || equalFoldASCII(first, "end")) && tail:
		return TxnCommit
	case (equalFoldASCII(first, "rollback") || equalFoldASCII(first, "abort")) && tail:
		return TxnRollback
	}
	return NotTxnControl
}
