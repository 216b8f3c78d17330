package ivr_test

import (
	"errors"
	"testing"

	"github.com/ivr/callerverify/ivr"
)

func TestCustomerRulesParse(t *testing.T) {
	tests := []struct {
		name  string
		check string
		input string
		want  ivr.IDReason // 0: accepted
	}{
		{"a Luhn number of odd body length is accepted", "luhn", "31001019", 0},
		{"a Luhn number of even body length is accepted", "luhn", "7992-7398-713", 0},
		{"a wrong Luhn check digit is rejected", "luhn", "31001018", ivr.ReasonChecksum},
		{"a mod-11 number is accepted", "mod11", "12345674", 0},
		{"a wrong mod-11 check digit is rejected", "mod11", "12345675", ivr.ReasonChecksum},
		{"a body with no mod-11 check digit is rejected", "mod11", "10000050", ivr.ReasonChecksum},
		{"no scheme takes any last digit", "none", "12345675", 0},
		{"too short is rejected", "luhn", "12345", ivr.ReasonLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ivr.CustomerRules{Check: tt.check}.Parse(tt.input)
			var e *ivr.InvalidIDError
			switch {
			case tt.want == 0 && err != nil:
				t.Errorf("Parse(%q) = %v, want it accepted", tt.input, err)
			case tt.want != 0 && (!errors.As(err, &e) || e.Reason != tt.want):
				t.Errorf("Parse(%q) = %v, want %s", tt.input, err, tt.want)
			}
		})
	}
}
