// Package agentui is the agents' side of the service: accounts and password
// hashing, server-side sessions with CSRF protection and login rate limits,
// the dashboard's HTTP handlers and JSON API, agent-initiated verification,
// and the websocket hub that sends every dashboard a snapshot of the live
// calls and then each event as it happens.
//
// It knows calls only through the store package's event and view types and
// the Calls interface it declares; it knows nothing of TwiML, CIBA or SQL.
package agentui
