package gen

// maxSIRENs is how many distinct SIRENs SIREN(i) can produce: the 8-digit
// payloads 10000000..99999999.
const maxSIRENs = 90_000_000

// sirenMul is coprime with maxSIRENs (= 2^7·3^2·5^7), so i ↦ (i·sirenMul +
// sirenAdd) mod maxSIRENs is a bijection and SIREN(i) values are distinct.
const (
	sirenMul = 48271 * 7919 // both primes, neither 2, 3 nor 5
	sirenAdd = 3_282_931
)

// SIREN returns the i-th synthetic SIREN (0 ≤ i < 90,000,000): 9 digits, no
// leading zero, the last one a Luhn check digit. It is deterministic and
// distinct for distinct i. It panics when i is out of range.
func SIREN(i int) string {
	var b [9]byte
	return string(appendSIREN(b[:0], i))
}

func appendSIREN(dst []byte, i int) []byte {
	if i < 0 || i >= maxSIRENs {
		panic("gen: SIREN index out of range")
	}
	p := 10_000_000 + (uint64(i)*sirenMul+sirenAdd)%maxSIRENs
	var d [9]byte
	for k := 7; k >= 0; k-- {
		d[k] = byte('0' + p%10)
		p /= 10
	}
	d[8] = luhnCheckDigit(d[:8])
	return append(dst, d[:]...)
}

// luhnCheckDigit returns the ASCII digit that makes payload+digit pass Luhn.
func luhnCheckDigit(payload []byte) byte {
	sum := 0
	// The check digit will sit at position 0 from the right, so the
	// rightmost payload digit is doubled.
	double := true
	for k := len(payload) - 1; k >= 0; k-- {
		v := int(payload[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// LuhnValid reports whether s is 9 ASCII digits passing the Luhn check (the
// spec's definition of a valid SIREN). It is local to gen so that the
// generator does not depend on the engine implementation.
func LuhnValid(s string) bool {
	if len(s) != 9 {
		return false
	}
	sum := 0
	for k := 0; k < 9; k++ {
		c := s[8-k]
		if c < '0' || c > '9' {
			return false
		}
		v := int(c - '0')
		if k%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
