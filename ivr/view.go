package ivr

import "strings"

// Dashboard states of a call (CallView.State).
const (
	ViewRinging        = "ringing"
	ViewGathering      = "gathering"
	ViewStarting       = "starting"
	ViewAwaitingBankID = "awaiting_bankid" // SE: with the pending sub-state
	ViewWordPair       = "word_pair"       // NO: waiting for the caller to pick the word pair
	ViewVerified       = "verified"
	ViewDeclined       = "declined"
	ViewExpired        = "expired"
	ViewUnknownUser    = "unknown_user"
	ViewFailed         = "failed"
	ViewUnverified     = "unverified" // handed to agents unverified
	ViewEnded          = "ended"
)

// View is the call as the dashboard shows it. v is the call's current
// verification, or nil. Nothing personal appears in full: the caller id and
// the national identity number are masked.
func View(c *Call, v *Verification) CallView {
	cv := CallView{
		CallSID:   c.SID,
		Caller:    MaskPhone(c.From),
		Language:  c.Language,
		Since:     c.CreatedAt,
		UpdatedAt: c.UpdatedAt,
		Outcome:   c.Outcome,
	}
	if !c.EndedAt.IsZero() {
		t := c.EndedAt
		cv.EndedAt = &t
	}
	if v != nil {
		vv := &VerificationView{
			ID:        v.ID,
			Country:   string(v.Country),
			Method:    method(v.Country),
			MaskedID:  v.MaskedID,
			Status:    string(v.Status),
			Initiator: v.Initiator,
			StartedAt: v.CreatedAt,
		}
		if v.Status == VerPending {
			vv.Pending = v.Pending
		}
		if v.Country == Norway && !v.Status.Done() {
			vv.WordPair = v.BindingMessage
		}
		if v.Status == VerApproved {
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

func viewState(c *Call, v *Verification) string {
	if c.State == CallEnded || !c.EndedAt.IsZero() {
		return ViewEnded
	}
	switch c.State {
	case CallGathering:
		if c.Step <= 1 && c.NumberAttempts == 0 && v == nil {
			return ViewRinging
		}
		return ViewGathering
	case CallHandedOff:
		switch {
		case v != nil && v.Status == VerApproved:
			return ViewVerified
		case v != nil && !v.Status.Done() && strings.HasPrefix(v.Initiator, "agent:"):
			return verificationState(v) // an agent is verifying the caller now
		}
		return ViewUnverified
	}
	if v == nil {
		return ViewGathering
	}
	return verificationState(v)
}

func verificationState(v *Verification) string {
	switch v.Status {
	case VerStarting:
		return ViewStarting
	case VerPending:
		if v.Country == Norway {
			return ViewWordPair
		}
		return ViewAwaitingBankID
	case VerApproved:
		return ViewVerified
	case VerDeclined:
		return ViewDeclined
	case VerExpired:
		return ViewExpired
	case VerUnknownUser:
		return ViewUnknownUser
	case VerCancelled:
		return ViewEnded
	}
	return ViewFailed
}

func method(c Country) string {
	switch c {
	case Sweden:
		return "Swedish BankID"
	case Norway:
		return "Norwegian BankID"
	}
	return string(c)
}
