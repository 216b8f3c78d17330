package ivr

// The check-digit schemes of the identifiers the IVR reads: Luhn for a
// Swedish personnummer and for customer numbers, mod 11 for a Norwegian
// fødselsnummer and for customer numbers.

// luhn returns the Luhn check digit of d, doubling every other digit from
// the right: right for card and account numbers of any length and for the
// nine digits of a personnummer before its check digit.
func luhn(d []byte) int {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return (10 - sum%10) % 10
}

// mod11 returns the mod-11 check digit of d with weights w (one per digit,
// from the left), or -1 when none exists (remainder 1).
func mod11(d []byte, w []int) int {
	sum := 0
	for i, c := range d {
		sum += int(c-'0') * w[i]
	}
	switch k := 11 - sum%11; k {
	case 11:
		return 0
	case 10:
		return -1
	default:
		return k
	}
}

// mod11Weights returns the usual mod-11 weights for n digits: 2, 3, … 7,
// 2, 3, … from the right.
func mod11Weights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[n-1-i] = 2 + i%6
	}
	return w
}
