package netlinkmptcp

import "github.com/mdlayher/genetlink"

// parseEvent decodes one event message, for tests that build or captured
// messages one at a time.
func parseEvent(m genetlink.Message) (Event, error) {
	var e Event
	err := decodeEvent(m.Header.Command, m.Data, &e)
	return e, err
}
