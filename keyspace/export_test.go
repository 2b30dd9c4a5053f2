package keyspace

// Seeded variants for the tests; the package's API hashes with seed 0 only.

func HashInt8Extended(v int64, seed uint64) uint64 { return hashInt8Extended(v, seed) }

func HashTextExtended(s string, seed uint64) uint64 { return hashBytesExtended(s, seed) }

func HashUUIDExtended(u [16]byte, seed uint64) uint64 { return hashUUIDExtended(u, seed) }
