package escrow

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Limits on Terms.Metadata, as Stripe sets them for its metadata.
const (
	MetadataMaxKeys       = 50  // keys in one escrow's metadata
	MetadataMaxKeyBytes   = 40  // bytes in a key
	MetadataMaxValueBytes = 500 // bytes in a value
)

// checkMetadata refuses metadata that breaks the limits, with a
// *MetadataError, and returns a copy of m that the caller cannot reach,
// or nil for no keys (an empty map and none are the same terms). Keys and
// values are text as checkText reads it: valid UTF-8, no control or
// bidirectional formatting characters; values, like other free text, may
// hold newlines and tabs, keys may not. Neither may be empty: Stripe
// takes an empty value to mean "remove the key", and keeping that meaning
// free is better than storing a key the host meant to leave out.
func checkMetadata(m map[string]string) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > MetadataMaxKeys {
		return nil, &MetadataError{Keys: len(m)}
	}
	// In key order, so that the error names the same key every time.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var problem string
		switch {
		case k == "":
			problem = "the key is empty"
		case textProblem(k, MetadataMaxKeyBytes, false) != "":
			problem = "the key " + textProblem(k, MetadataMaxKeyBytes, false)
		case v == "":
			problem = "the value is empty; leave the key out instead"
		case textProblem(v, MetadataMaxValueBytes, true) != "":
			problem = "the value " + textProblem(v, MetadataMaxValueBytes, true)
		default:
			continue
		}
		return nil, &MetadataError{Key: k, Reason: problem}
	}
	return maps.Clone(m), nil
}

// metadata adds m to a request: its pairs in key order, each key and value
// quoted, as one argument. No metadata leaves the argument out, so a
// request without it has the form it had before metadata existed.
func (r *request) metadata(name string, m map[string]string) *request {
	if len(m) == 0 {
		return r
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.WriteString(strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return r.str(name, b.String())
}
