package ivr

// Event kinds recorded in the audit trail and published to dashboards.
const (
	EventCallStarted       EventKind = "call_started"
	EventNumberInvalid     EventKind = "number_invalid"
	EventNumberAccepted    EventKind = "number_accepted"
	EventVerification      EventKind = "verification_started"  // a verification was created (starting)
	EventPending           EventKind = "verification_pending"  // bc-authorize answered; waiting for the user
	EventPendingUpdate     EventKind = "verification_progress" // a new Swedish pending sub-state
	EventApproved          EventKind = "verification_approved"
	EventDeclined          EventKind = "verification_declined"
	EventExpired           EventKind = "verification_expired"
	EventUnknownUser       EventKind = "verification_unknown_user"
	EventFailed            EventKind = "verification_failed"
	EventCancelled         EventKind = "verification_cancelled"
	EventRetryOffered      EventKind = "retry_offered"
	EventRetryAccepted     EventKind = "retry_accepted"
	EventRetryRefused      EventKind = "retry_refused"
	EventHandedOff         EventKind = "handed_off"
	EventCallEnded         EventKind = "call_ended"
	EventCallStatus        EventKind = "call_status"
	EventFallback          EventKind = "fallback"
	EventAgentVerification EventKind = "agent_verification"
	EventRateLimited       EventKind = "rate_limited" // a verification was refused by a rate limit
)

// Call outcomes.
const (
	OutcomeVerified   = "verified"
	OutcomeUnverified = "unverified"
)

// statusEvent is the event recorded when a verification reaches st.
func statusEvent(st VerificationStatus) EventKind {
	switch st {
	case VerPending:
		return EventPending
	case VerApproved:
		return EventApproved
	case VerDeclined:
		return EventDeclined
	case VerExpired:
		return EventExpired
	case VerUnknownUser:
		return EventUnknownUser
	case VerCancelled:
		return EventCancelled
	}
	return EventFailed
}
