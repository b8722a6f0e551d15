package distro

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Hash is a content hash of an image.
type Hash struct {
	Algorithm string // "sha256" or "sha512"
	Sum       []byte
}

// hashSizes maps the accepted algorithms to their digest size in bytes.
var hashSizes = map[string]int{"sha256": 32, "sha512": 64}

// ParseHash parses a digest of the given algorithm ("sha256" or "sha512")
// written as lower- or upper-case hex, as Nix base-32 (the output of
// nix-prefetch-url), or as SRI ("sha256-<base64>").
func ParseHash(algorithm, s string) (Hash, error) {
	size, ok := hashSizes[algorithm]
	if !ok {
		return Hash{}, fmt.Errorf("unknown hash algorithm %q: want sha256 or sha512", algorithm)
	}
	if prefix, b64, ok := strings.Cut(s, "-"); ok {
		if _, known := hashSizes[prefix]; !known {
			return Hash{}, fmt.Errorf("invalid SRI hash: unknown algorithm %q, want %s-<base64>", prefix, algorithm)
		}
		if prefix != algorithm {
			return Hash{}, fmt.Errorf("invalid SRI hash: it is %s but this is a %s attribute", prefix, algorithm)
		}
		sum, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			return Hash{}, fmt.Errorf("invalid SRI hash: bad base64: %w", err)
		}
		if len(sum) != size {
			return Hash{}, fmt.Errorf("invalid SRI hash: %d bytes, %s needs %d", len(sum), algorithm, size)
		}
		return Hash{Algorithm: algorithm, Sum: sum}, nil
	}
	switch len(s) {
	case hex.EncodedLen(size):
		if i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("0123456789abcdefABCDEF", r) }); i >= 0 {
			return Hash{}, fmt.Errorf("invalid hex hash: character %q at offset %d is not a hex digit", s[i], i)
		}
		sum, err := hex.DecodeString(s)
		if err != nil {
			return Hash{}, fmt.Errorf("invalid hex hash: %w", err)
		}
		return Hash{Algorithm: algorithm, Sum: sum}, nil
	case nixBase32Len(size):
		sum, err := decodeNixBase32(s, size)
		if err != nil {
			return Hash{}, err
		}
		return Hash{Algorithm: algorithm, Sum: sum}, nil
	}
	return Hash{}, fmt.Errorf("invalid %s hash: %d characters, want %d hex digits, %d Nix base-32 characters or SRI %q",
		algorithm, len(s), hex.EncodedLen(size), nixBase32Len(size), algorithm+"-<base64>")
}

// SRI returns the hash in Subresource Integrity form, "sha256-<base64>",
// which is what Nix's fetchurl takes as `hash`.
func (h Hash) SRI() string {
	return h.Algorithm + "-" + base64.StdEncoding.EncodeToString(h.Sum)
}

// Hex returns the digest as lower-case hex.
func (h Hash) Hex() string { return hex.EncodeToString(h.Sum) }

// String returns the SRI form.
func (h Hash) String() string { return h.SRI() }

// nixBase32Alphabet is Nix's base-32 alphabet: digits and lower-case
// letters without e, o, t and u.
const nixBase32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// nixBase32Len is the length of the Nix base-32 encoding of size bytes.
func nixBase32Len(size int) int { return (size*8-1)/5 + 1 }

// decodeNixBase32 decodes Nix's base-32, in which the last character holds
// the lowest five bits of the first byte: character i from the end is bits
// 5i..5i+4 of the digest read as a little-endian number.
func decodeNixBase32(s string, size int) ([]byte, error) {
	if len(s) != nixBase32Len(size) {
		return nil, fmt.Errorf("invalid Nix base-32 hash: %d characters, want %d", len(s), nixBase32Len(size))
	}
	out := make([]byte, size)
	for n := 0; n < len(s); n++ {
		c := s[len(s)-n-1]
		digit := strings.IndexByte(nixBase32Alphabet, c)
		if digit < 0 {
			return nil, fmt.Errorf("invalid Nix base-32 hash: character %q at offset %d is not in the alphabet %s", c, len(s)-n-1, nixBase32Alphabet)
		}
		b := n * 5
		i, j := b/8, uint(b%8)
		out[i] |= byte(digit << j)
		carry := byte(digit >> (8 - j))
		if i+1 < size {
			out[i+1] |= carry
		} else if carry != 0 {
			return nil, fmt.Errorf("invalid Nix base-32 hash: first character %q sets bits beyond the %d-byte digest", c, size)
		}
	}
	return out, nil
}
