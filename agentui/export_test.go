package agentui

// SetClientsHook makes h call f, from Run, whenever its client count changes.
// Call it before Run.
func SetClientsHook(h *Hub, f func(n int)) { h.onClients = f }

// SetSendBuffer sets how many messages a client may have queued before it
// counts as too slow. Call it before Run.
func SetSendBuffer(h *Hub, n int) { h.sendBuffer = n }

// PeakHashing is the most password checks that ran at once.
func PeakHashing(s *Server) int { return int(s.hashingPeak.Load()) }
