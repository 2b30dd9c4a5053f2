package pgerror

// Code is a five-character SQLSTATE.
type Code string

func (c Code) String() string { return string(c) }

// Class returns the two-character class of the code ("08" for 08P01).
func (c Code) Class() string {
	if len(c) < 2 {
		return ""
	}
	return string(c[:2])
}

// Standard PostgreSQL codes used by the proxy itself. Backends' own errors
// pass through untouched and never go through this list.
const (
	SuccessfulCompletion              Code = "00000"
	ConnectionException               Code = "08000"
	ConnectionFailure                 Code = "08006"
	ProtocolViolation                 Code = "08P01"
	FeatureNotSupported               Code = "0A000"
	NumericValueOutOfRange            Code = "22003"
	InvalidParameterValue             Code = "22023"
	InvalidTextRepresentation         Code = "22P02"
	BadCopyFileFormat                 Code = "22P04"
	InvalidTransactionState           Code = "25000"
	ActiveSQLTransaction              Code = "25001"
	InFailedSQLTransaction            Code = "25P02"
	IdleInTransactionSessionTimeout   Code = "25P03"
	InvalidSQLStatementName           Code = "26000"
	InvalidAuthorizationSpecification Code = "28000"
	InvalidPassword                   Code = "28P01"
	SerializationFailure              Code = "40001"
	SyntaxError                       Code = "42601"
	InsufficientPrivilege             Code = "42501"
	DuplicatePreparedStatement        Code = "42P05"
	UndefinedObject                   Code = "42704"
	TooManyConnections                Code = "53300"
	ProgramLimitExceeded              Code = "54000"
	QueryCanceled                     Code = "57014"
	AdminShutdown                     Code = "57P01"
	CannotConnectNow                  Code = "57P03"
	InternalError                     Code = "XX000"
)

// Codes invented by shardproxy. Each sits inside a standard class so a client
// that only looks at the class reacts correctly.
const (
	// PoolTimeout: no server connection became free within pool.wait_timeout.
	// Class 57 (operator intervention) like 57P03: retry later.
	PoolTimeout Code = "57P03"
)
