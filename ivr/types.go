package ivr

import (
	"context"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// Publisher receives every state change, after it is stored. Publish must not
// block for long: the dashboard hub implements it with a buffered channel.
type Publisher interface {
	Publish(ctx context.Context, e store.Event)
}

// Authenticator is the part of a CIBA client the IVR uses; *ciba.Client
// satisfies it. Token validates the ID token before returning it.
type Authenticator interface {
	Authenticate(ctx context.Context, req ciba.AuthRequest) (*ciba.AuthResponse, error)
	Token(ctx context.Context, authReqID string) (*ciba.TokenResponse, error)
}
