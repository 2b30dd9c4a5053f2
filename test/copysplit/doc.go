// Package copysplit holds the integration tests of package copysplit
// against real PostgreSQL 15: streams of COPY data, generated to be tricky
// (escapes, quotes, line endings, NULLs, headers, end markers) or random,
// are loaded with COPY FROM STDIN and split by the splitter, and the keys
// the splitter found must be those the server stored, its framing errors
// the server's, and rows dealt out to two tables the rows of one. The
// tests live in copysplit_test; this file only names the package.
package copysplit
