package keyspace

// PostgreSQL's extended hash functions, ported from src/common/hashfn.c
// (hash_bytes_extended, hash_bytes_uint32_extended: Bob Jenkins' lookup3
// with a 64-bit seed and a 64-bit result) and src/backend/access/hash/
// hashfunc.c and utils/adt/uuid.c (the per-type wrappers). Bytes are read
// as PostgreSQL reads them on a little-endian machine such as x86-64 or
// arm64; there its aligned and unaligned code paths give the same result,
// so one path is enough here. A big-endian server computes different
// values for text and uuid keys: shards must be little-endian.

import "math/bits"

// ID is a position in the keyspace.
type ID int64

// Int is the position of an int2, int4 or int8 key:
// hashint8extended(v, 0).
func Int(v int64) ID {
	return ID(hashInt8Extended(v, 0))
}

// Text is the position of a text or varchar key (deterministic collation):
// hashtextextended(s, 0). s is hashed as the bytes the server stores, so
// it must be in the database's encoding (UTF-8 for shardproxy).
func Text(s string) ID {
	return ID(hashBytesExtended(s, 0))
}

// UUID is the position of a uuid key: uuid_hash_extended(u, 0). u is the
// uuid's 16 bytes in the order they are written
// (00112233-4455-6677-8899-aabbccddeeff is {0x00, 0x11, ..., 0xff}).
func UUID(u [16]byte) ID {
	return ID(hashUUIDExtended(u, 0))
}

// hashInt8Extended is hashint8extended. To hash an int8 like the int4 and
// int2 of equal value, it folds the high half into the low half: XORed
// as is for a non-negative value, complemented for a negative one. For a
// value that fits in int4 the high half is 0 or all ones, so the fold
// leaves the low half, the int4 itself, unchanged; hashint4extended and
// hashint2extended hash that int4 (the int2 sign-extended) the same way.
func hashInt8Extended(v int64, seed uint64) uint64 {
	lo := uint32(v)
	hi := uint32(v >> 32)
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return hashUint32Extended(lo, seed)
}

// initial is lookup3's starting state for a key of n bytes, with
// PostgreSQL's constant.
func initial(n uint32) uint32 {
	return 0x9e3779b9 + n + 3923095
}

// hashUint32Extended is hash_bytes_uint32_extended: the hash of the four
// bytes of k, without storing them.
func hashUint32Extended(k uint32, seed uint64) uint64 {
	a := initial(4)
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	a += k
	a, b, c = final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// hashBytesExtended is hash_bytes_extended (hash_any_extended) of k.
// PostgreSQL limits a value to 1 GB, so len(k) fits in uint32 as it
// does in the C int it takes.
func hashBytesExtended(k string, seed uint64) uint64 {
	a := initial(uint32(len(k)))
	b, c := a, a
	if seed != 0 {
		// The seed is hashed as a 12-byte block: its halves and four
		// zero bytes.
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	for len(k) >= 12 {
		a += le32(k[0], k[1], k[2], k[3])
		b += le32(k[4], k[5], k[6], k[7])
		c += le32(k[8], k[9], k[10], k[11])
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	// The last 0 to 11 bytes; c's lowest byte stays free (lookup3 once
	// put the length there).
	switch len(k) {
	case 11:
		c += uint32(k[10]) << 24
		fallthrough
	case 10:
		c += uint32(k[9]) << 16
		fallthrough
	case 9:
		c += uint32(k[8]) << 8
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	a, b, c = final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// hashUUIDExtended is hashBytesExtended of the 16 bytes of u, unrolled:
// one 12-byte block and a 4-byte tail. (Passing u[:] to a byte-slice
// version would move u to the heap.)
func hashUUIDExtended(u [16]byte, seed uint64) uint64 {
	a := initial(16)
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	a += le32(u[0], u[1], u[2], u[3])
	b += le32(u[4], u[5], u[6], u[7])
	c += le32(u[8], u[9], u[10], u[11])
	a, b, c = mix(a, b, c)
	a += le32(u[12], u[13], u[14], u[15])
	a, b, c = final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// le32 is the little-endian word of four bytes.
func le32(b0, b1, b2, b3 byte) uint32 {
	return uint32(b0) | uint32(b1)<<8 | uint32(b2)<<16 | uint32(b3)<<24
}

// mix is lookup3's reversible mixing of three words.
func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// final is lookup3's final mixing of three words into c (and b, which
// PostgreSQL's extended variants return as the high half).
func final(a, b, c uint32) (uint32, uint32, uint32) {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return a, b, c
}
