package agentui

// SetClientsHook makes h call f, from Run, whenever its client count changes.
// Call it before Run.
func SetClientsHook(h *Hub, f func(n int)) { h.onClients = f }

// PeakHashing is the most password checks that ran at once.
func PeakHashing(s *Server) int { return int(s.hashingPeak.Load()) }
