package merge

// Date and time values in text. Hidden columns come in binary, but a
// visible date/time column the client reads as text may be a sort key, and
// a HAVING literal is text: these read the forms the proxy can read without
// the session's settings (ISO dates as DateStyle ISO prints them, explicit
// UTC offsets, the postgres IntervalStyle and plain "N unit" literals).
// Anything else is refused with 0A000 rather than read wrongly; the binary
// forms are always exact.

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/pgerror"
)

const (
	usecPerSec  int64 = 1000000
	usecPerMin        = 60 * usecPerSec
	usecPerHour       = 60 * usecPerMin
	usecPerDay        = 24 * usecPerHour
	// epochJDate is date2j(2000, 1, 1): PostgreSQL counts from 2000-01-01.
	epochJDate = 2451545

	dateInfinity    int64 = math.MaxInt32 // DATEVAL_NOEND
	dateNegInfinity int64 = math.MinInt32 // DATEVAL_NOBEGIN
	tsInfinity      int64 = math.MaxInt64 // DT_NOEND
	tsNegInfinity   int64 = math.MinInt64 // DT_NOBEGIN
)

func unreadable(typ, s string) error {
	return unsupported("compare the column in binary, or use DateStyle ISO and IntervalStyle postgres (the defaults) and ISO literals",
		"cannot read %s value %s in the proxy", typ, quoteValue(s))
}

// date2j is PostgreSQL's Julian day of a proleptic Gregorian date (year 0
// is 1 BC).
func date2j(y, m, d int64) int64 {
	if m > 2 {
		m++
		y += 4800
	} else {
		m += 13
		y += 4799
	}
	century := y / 100
	j := y*365 - 32167
	j += y/4 - century + century/4
	j += 7834*m/256 + d
	return j
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// cutBC removes a trailing " BC" (PostgreSQL prints it after everything).
func cutBC(t string) (string, bool) {
	if len(t) > 3 && strings.EqualFold(t[len(t)-3:], " bc") {
		return trimSpace(t[:len(t)-3]), true
	}
	return t, false
}

// parseISODate reads Y...-MM-DD at the start of t and returns the days
// since 2000-01-01 and the rest of t.
func parseISODate(t string, bc bool) (int64, string, bool) {
	dash := strings.IndexByte(t, '-')
	if dash < 1 || len(t) < dash+6 || t[dash+3] != '-' {
		return 0, "", false
	}
	y, err1 := strconv.ParseInt(t[:dash], 10, 64)
	m, err2 := strconv.ParseInt(t[dash+1:dash+3], 10, 64)
	d, err3 := strconv.ParseInt(t[dash+4:dash+6], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || y < 1 || y > 5874897 || t[0] == '+' {
		return 0, "", false
	}
	if bc {
		y = -(y - 1)
	}
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, "", false
	}
	return date2j(y, m, d) - epochJDate, t[dash+6:], true
}

// parseClock reads HH:MM[:SS[.ffffff]] at the start of t, hours up to
// maxHours, and returns microseconds and the rest of t.
func parseClock(t string, maxHours int64) (int64, string, bool) {
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 || i+3 > len(t) || t[i] != ':' {
		return 0, "", false
	}
	h, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || h > maxHours {
		return 0, "", false
	}
	mi, err := strconv.ParseInt(t[i+1:i+3], 10, 64)
	if err != nil || mi > 59 || t[i+1] == '+' || t[i+1] == '-' {
		return 0, "", false
	}
	micro := h*usecPerHour + mi*usecPerMin
	t = t[i+3:]
	if len(t) >= 3 && t[0] == ':' {
		s, err := strconv.ParseInt(t[1:3], 10, 64)
		if err != nil || s > 59 || t[1] == '+' || t[1] == '-' {
			return 0, "", false
		}
		micro += s * usecPerSec
		t = t[3:]
		if len(t) > 0 && t[0] == '.' {
			j := 1
			for j < len(t) && t[j] >= '0' && t[j] <= '9' {
				j++
			}
			frac := t[1:j]
			if frac == "" || len(frac) > 6 {
				return 0, "", false
			}
			f, _ := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
			micro += f
			t = t[j:]
		}
	}
	if micro < 0 {
		return 0, "", false // past int64: only the most negative interval
	}
	return micro, t, true
}

// parseZone reads an explicit UTC offset (+HH, +HH:MM, +HH:MM:SS, or Z)
// and returns it in seconds east of UTC.
func parseZone(t string) (int64, bool) {
	if strings.EqualFold(t, "z") {
		return 0, true
	}
	if len(t) < 3 || (t[0] != '+' && t[0] != '-') {
		return 0, false
	}
	sign := int64(1)
	if t[0] == '-' {
		sign = -1
	}
	parts := strings.Split(t[1:], ":")
	if len(parts) > 3 {
		return 0, false
	}
	var secs int64
	for i, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789") != "" {
			return 0, false
		}
		v, _ := strconv.ParseInt(p, 10, 64)
		secs += v * []int64{3600, 60, 1}[i]
	}
	return sign * secs, true
}

// parseDateText reads a date as DateStyle ISO prints it.
func parseDateText(s string) (int64, error) {
	t := trimSpace(s)
	switch strings.ToLower(t) {
	case "infinity", "+infinity":
		return dateInfinity, nil
	case "-infinity":
		return dateNegInfinity, nil
	}
	t, bc := cutBC(t)
	days, rest, ok := parseISODate(t, bc)
	if !ok || rest != "" {
		return 0, unreadable("date", s)
	}
	return days, nil
}

// parseTimeText reads time without time zone: HH:MM[:SS[.ffffff]], up to
// 24:00:00.
func parseTimeText(s string) (int64, error) {
	micro, rest, ok := parseClock(trimSpace(s), 24)
	if !ok || rest != "" || micro > usecPerDay {
		return 0, unreadable("time", s)
	}
	return micro, nil
}

// parseTimestampText reads a timestamp as DateStyle ISO prints it (a date
// alone means midnight). With tz the value needs an explicit offset (else
// it would depend on the TimeZone setting) and becomes UTC; without, an
// offset is ignored, as timestamp input ignores it.
func parseTimestampText(s string, tz bool) (int64, error) {
	typ := "timestamp"
	if tz {
		typ = "timestamp with time zone"
	}
	t := trimSpace(s)
	switch strings.ToLower(t) {
	case "infinity", "+infinity":
		return tsInfinity, nil
	case "-infinity":
		return tsNegInfinity, nil
	}
	t, bc := cutBC(t)
	days, rest, ok := parseISODate(t, bc)
	if !ok {
		return 0, unreadable(typ, s)
	}
	var clock int64
	zoned := false
	var offset int64
	if rest != "" {
		if rest[0] != ' ' && rest[0] != 'T' && rest[0] != 't' {
			return 0, unreadable(typ, s)
		}
		clock, rest, ok = parseClock(trimSpace(rest[1:]), 24)
		if !ok || clock > usecPerDay {
			return 0, unreadable(typ, s)
		}
		if rest = trimSpace(rest); rest != "" {
			if offset, ok = parseZone(rest); !ok {
				return 0, unreadable(typ, s)
			}
			zoned = true
		}
	}
	if tz && !zoned {
		return 0, unreadable(typ, s)
	}
	micro := days*usecPerDay + clock
	if tz {
		micro -= offset * usecPerSec
	}
	return micro, nil
}

// interval is PostgreSQL's interval: three fields that are never
// normalised into each other in storage.
type interval struct {
	micro  int64
	days   int32
	months int32
}

// span is interval_cmp_value as two parts: comparisons treat a month as
// 30 days and a day as 24 hours, so the span in microseconds (which needs
// 128 bits) is whole days plus a remainder in [0, 1 day).
func (iv interval) span() (days, rem int64) {
	days = int64(iv.months)*30 + int64(iv.days)
	q, r := iv.micro/usecPerDay, iv.micro%usecPerDay
	if r < 0 {
		r += usecPerDay
		q--
	}
	return days + q, r
}

func decodeIntervalBinary(b []byte) (interval, error) {
	if len(b) != 16 {
		return interval{}, badBinary("interval")
	}
	return interval{
		micro:  int64(binary.BigEndian.Uint64(b)),
		days:   int32(binary.BigEndian.Uint32(b[8:])),
		months: int32(binary.BigEndian.Uint32(b[12:])),
	}, nil
}

func (iv interval) appendBinary(buf []byte) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(iv.micro))
	buf = binary.BigEndian.AppendUint32(buf, uint32(iv.days))
	return binary.BigEndian.AppendUint32(buf, uint32(iv.months))
}

// intervalUnit maps a unit word to the field it adds to and its size in
// that field's unit ('m' months, 'd' days, 'u' microseconds).
func intervalUnit(word string) (field byte, size int64, ok bool) {
	switch strings.ToLower(word) {
	case "year", "years", "yr", "yrs", "y":
		return 'm', 12, true
	case "mon", "mons", "month", "months":
		return 'm', 1, true
	case "week", "weeks", "w":
		return 'd', 7, true
	case "day", "days", "d":
		return 'd', 1, true
	case "hour", "hours", "hr", "hrs", "h":
		return 'u', usecPerHour, true
	case "minute", "minutes", "min", "mins", "m":
		return 'u', usecPerMin, true
	case "second", "seconds", "sec", "secs", "s":
		return 'u', usecPerSec, true
	case "millisecond", "milliseconds", "msec", "msecs", "ms":
		return 'u', 1000, true
	case "microsecond", "microseconds", "usec", "usecs", "us":
		return 'u', 1, true
	}
	return 0, 0, false
}

// parseIntervalText reads an interval as IntervalStyle postgres (and
// postgres_verbose) prints it, which is also the common literal form:
// "1 year 2 mons -3 days +04:05:06.5", "@ 1 day 2 hours ago".
func parseIntervalText(s string) (interval, error) {
	words := strings.Fields(s)
	if len(words) > 0 && words[0] == "@" {
		words = words[1:]
	}
	ago := false
	if n := len(words); n > 0 && strings.EqualFold(words[n-1], "ago") {
		ago = true
		words = words[:n-1]
	}
	if len(words) == 0 {
		return interval{}, unreadable("interval", s)
	}
	var months, days, micro int64
	// Accumulated in int64 then checked: far below overflow for any
	// literal a person writes.
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.Contains(w, ":") {
			sign := int64(1)
			if w[0] == '-' || w[0] == '+' {
				if w[0] == '-' {
					sign = -1
				}
				w = w[1:]
			}
			c, rest, ok := parseClock(w, math.MaxInt64/usecPerHour)
			if !ok || rest != "" {
				return interval{}, unreadable("interval", s)
			}
			micro += sign * c
			continue
		}
		if i+1 >= len(words) {
			return interval{}, unreadable("interval", s)
		}
		field, size, ok := intervalUnit(words[i+1])
		if !ok {
			return interval{}, unreadable("interval", s)
		}
		i++
		if field == 'u' && strings.Contains(w, ".") {
			v, ok := parseFraction(w, size)
			if !ok {
				return interval{}, unreadable("interval", s)
			}
			micro += v
			continue
		}
		n, err := strconv.ParseInt(w, 10, 32)
		if err != nil {
			return interval{}, unreadable("interval", s)
		}
		switch field {
		case 'm':
			months += n * size
		case 'd':
			days += n * size
		default:
			micro += n * size
		}
	}
	if ago {
		months, days, micro = -months, -days, -micro
	}
	if months != int64(int32(months)) || days != int64(int32(days)) {
		return interval{}, pgerrorIntervalRange()
	}
	return interval{micro: micro, days: int32(days), months: int32(months)}, nil
}

func pgerrorIntervalRange() error {
	return pgerror.New(codeDatetimeValueOutOfRange, "interval out of range")
}

// parseFraction reads [+-]N.F (at most six digits after the point) times
// size microseconds, truncated to a whole microsecond.
func parseFraction(w string, size int64) (int64, bool) {
	sign := int64(1)
	if w != "" && (w[0] == '-' || w[0] == '+') {
		if w[0] == '-' {
			sign = -1
		}
		w = w[1:]
	}
	ip, fp, _ := strings.Cut(w, ".")
	if ip == "" {
		ip = "0"
	}
	if len(fp) > 6 || strings.Trim(ip, "0123456789") != "" || strings.Trim(fp, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.ParseInt(ip, 10, 32)
	if err != nil {
		return 0, false
	}
	f, _ := strconv.ParseInt(fp+strings.Repeat("0", 6-len(fp)), 10, 64)
	return sign * (i*size + f*size/1000000), true
}
