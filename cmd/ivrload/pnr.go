package main

import (
	"fmt"
	"time"
)

// personnummer returns the i-th of a sequence of distinct, valid 12-digit
// Swedish personnummer (YYYYMMDDNNNC): a real birth date from 1950 on, a
// serial 001–999 and the Luhn check digit. They are made up for the
// simulator; none is printed.
func personnummer(i int) string {
	day := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/999)
	serial := i%999 + 1
	ten := fmt.Sprintf("%s%03d", day.Format("060102"), serial) // YYMMDDNNN
	return day.Format("2006") + ten[2:] + string(rune('0'+luhn(ten)))
}

// luhn is the check digit of the digits in s (Swedish personnummer: weights
// 2,1,2,1,… from the left over YYMMDDNNN).
func luhn(s string) int {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i]-'0') * (2 - i%2)
		sum += d/10 + d%10
	}
	return (10 - sum%10) % 10
}
