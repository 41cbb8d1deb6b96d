package processor

import (
	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// OpenStore opens the Badger store of a processor: opts with the engine's
// header merge (a day change writes a state's new decision as a small
// header key, merged by every read), which every processor store needs.
func OpenStore(opts state.Options) (*state.Store, error) {
	opts.MergeHeader = engine.MergeHeader
	return state.Open(opts)
}
