package ops

import "net/http"

// uplift serves GET /v1/uplift: the latest uplift rows of this instance's
// aggregators (schemas/uplift.avsc fields, one row per rules version,
// holdout and offer).
func (s *Server) uplift(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, upliftBody{Rows: s.cfg.Processor.Uplift()})
}

type upliftBody struct {
	Rows any `json:"rows"`
}

// registerUplift adds the uplift route (kept apart from routes()).
func (s *Server) registerUplift(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/uplift", s.uplift)
}
