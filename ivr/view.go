package ivr

import (
	"cmp"

	"strings"

	"github.com/ivr/callerverify/ciba"

	"github.com/ivr/callerverify/internal/store"
)

// View is the call as the dashboard shows it. v is the call's current
// verification, or nil. Nothing personal appears in full: the caller id and
// the national identity number are masked.
func View(c *store.Call, v *store.Verification) store.CallView {
	cv := store.CallView{
		CallSID:   c.SID,
		Caller:    MaskPhone(c.From),
		Language:  c.Language,
		Since:     c.CreatedAt,
		UpdatedAt: c.UpdatedAt,
		Outcome:   c.Outcome,
		Reason:    string(viewReason(c, v)),
	}
	if !c.EndedAt.IsZero() {
		t := c.EndedAt
		cv.EndedAt = &t
	}
	if !c.HandedOffAt.IsZero() {
		t := c.HandedOffAt
		cv.HandedOffAt = &t
	}
	if v != nil {
		vv := &store.VerificationView{
			ID:        v.ID,
			Country:   string(v.Country),
			Method:    MethodName(v.Method, v.Country),
			IDKind:    string(cmp.Or(v.IDKind, store.IDNationalID)),
			MaskedID:  v.MaskedID,
			Status:    string(v.Status),
			Initiator: v.Initiator,
			StartedAt: v.CreatedAt,
		}
		if v.Status == store.VerPending {
			vv.Pending = v.Pending
		}
		if v.Country == store.Norway && !v.Status.Done() {
			vv.WordPair = v.BindingMessage
		}
		if !v.Status.Done() {
			vv.Code = BindingCode(v)
		}
		if v.Status == store.VerApproved {
			vv.Name = v.Name
		}
		if !v.CompletedAt.IsZero() {
			t := v.CompletedAt
			vv.CompletedAt = &t
		}
		cv.Verification = vv
		if v.UpdatedAt.After(cv.UpdatedAt) {
			cv.UpdatedAt = v.UpdatedAt
		}
	}
	cv.State = viewState(c, v)
	return cv
}

// viewReason is why the call is not verified, as the dashboard says it: the
// reason stored with the call, unless a verification that ended since (the
// retry offer, or one an agent started) tells a newer story.
func viewReason(c *store.Call, v *store.Verification) store.Reason {
	if v != nil && v.Status == store.VerApproved {
		return ""
	}
	if v != nil && v.Status.Done() && (c.State == store.CallRetry || isAgent(v.Initiator)) {
		return FailureReason(v, v.Status)
	}
	return c.Reason
}

func isAgent(initiator string) bool { return strings.HasPrefix(initiator, "agent:") }

func viewState(c *store.Call, v *store.Verification) string {
	if c.State == store.CallEnded || !c.EndedAt.IsZero() {
		return store.ViewEnded
	}
	switch c.State {
	case store.CallGathering:
		if c.Step <= 1 && c.NumberAttempts == 0 && v == nil {
			return store.ViewRinging
		}
		return store.ViewGathering
	case store.CallHandedOff:
		switch {
		case v != nil && v.Status == store.VerApproved:
			return store.ViewVerified
		case v != nil && !v.Status.Done() && isAgent(v.Initiator):
			return verificationState(v) // an agent is verifying the caller now
		}
		return store.ViewUnverified
	}
	if v == nil {
		return store.ViewGathering
	}
	return verificationState(v)
}

func verificationState(v *store.Verification) string {
	switch v.Status {
	case store.VerStarting:
		return store.ViewStarting
	case store.VerPending:
		if v.Country == store.Norway {
			return store.ViewWordPair
		}
		return store.ViewAwaitingBankID
	case store.VerApproved:
		return store.ViewVerified
	case store.VerDeclined:
		return store.ViewDeclined
	case store.VerExpired:
		return store.ViewExpired
	case store.VerUnknownUser:
		return store.ViewUnknownUser
	case store.VerCancelled:
		return store.ViewEnded
	}
	return store.ViewFailed
}

// MethodName names, for agents, what the caller approves with: the broker
// profile's method (store.Verification.Method), or for rows from before
// methods were stored, the country's BankID.
func MethodName(method string, c store.Country) string {
	switch method {
	case "se-bankid":
		return "Swedish BankID"
	case "no-bankid":
		return "Norwegian BankID"
	case "guardian":
		return "Auth0 Guardian"
	case "link":
		return "Mosaic"
	case "":
		switch c {
		case store.Sweden:
			return "Swedish BankID"
		case store.Norway:
			return "Norwegian BankID"
		}
	}
	return "the identity broker"
}

// Approver names, for agents, what callers approve with at profile p:
// "BankID" at Idura, "Auth0 Guardian", "Mosaic", or "the identity broker".
func Approver(p *ciba.Profile) string {
	if p == nil || p.LoginHint == ciba.HintSubSSN {
		return "BankID"
	}
	return MethodName(p.DefaultMethod, "")
}
