package harness

import "strings"

// allSendersFlag runs rstwatch with the packet-level view (issue #14): a
// BTF-typed program on every packet queued on any device, so its cost
// shows on ordinary traffic as well as on resets.
const allSendersFlag = "--all-senders"

// nameSuffix names a configuration by its extra flags:
// rstwatch-serve + [--all-senders] = rstwatch-serve-all-senders.
func nameSuffix(extra []string) string {
	var b strings.Builder
	for _, f := range extra {
		b.WriteString("-" + strings.TrimLeft(f, "-"))
	}
	return b.String()
}

func howSuffix(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return " " + strings.Join(extra, " ")
}
