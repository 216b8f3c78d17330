package ivr

import "github.com/ivr/callerverify/internal/store"

// statusEvent is the event recorded when a verification reaches st.
func statusEvent(st store.VerificationStatus) store.EventKind {
	switch st {
	case store.VerPending:
		return store.EventPending
	case store.VerApproved:
		return store.EventApproved
	case store.VerDeclined:
		return store.EventDeclined
	case store.VerExpired:
		return store.EventExpired
	case store.VerUnknownUser:
		return store.EventUnknownUser
	case store.VerCancelled:
		return store.EventCancelled
	}
	return store.EventFailed
}
