package zk

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a parsed ZooKeeper version string, as printed by the server
// ("3.4.6-1569965, built on 02/20/2014 09:09 GMT") or found in a jar.
type Version struct {
	Raw   string // the string as found
	Major int
	Minor int
	Patch int
	Pre   string // "alpha", "beta", "rc1", "SNAPSHOT"; "" for a release
	Build string // commit or build id after the dash, "" when absent
	Built string // the "built on" part, "" when absent
}

// fixed1702 is the first Java client release carrying the ZOOKEEPER-1702 fix
// (3.4.6; every 3.5.x, pre-releases included, came after it).
var fixed1702 = Version{Major: 3, Minor: 4, Patch: 6}

// ParseVersion parses every version format ZooKeeper has printed. It needs at
// least "major.minor"; the rest is optional.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	rest := strings.TrimSpace(s)
	if i := strings.Index(rest, ","); i >= 0 {
		built := strings.TrimSpace(rest[i+1:])
		v.Built = strings.TrimSpace(strings.TrimPrefix(built, "built on"))
		rest = strings.TrimSpace(rest[:i])
	}
	rest = strings.TrimPrefix(strings.TrimPrefix(rest, "v"), "V")
	num, suffix := rest, ""
	if i := strings.IndexAny(rest, "-_ "); i >= 0 {
		num, suffix = rest[:i], rest[i+1:]
	}
	parts := strings.Split(num, ".")
	if len(parts) < 2 {
		return Version{Raw: s}, fmt.Errorf("parse version %q: want major.minor[.patch]", s)
	}
	nums := make([]int, 0, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1_000_000 {
			if i >= 2 {
				// "3.4.6.SNAPSHOT"-like tails: keep what parsed.
				suffix = strings.Join(append([]string{p}, parts[i+1:]...), ".") + suffix
				break
			}
			return Version{Raw: s}, fmt.Errorf("parse version %q: %q is not a number", s, p)
		}
		if i < 3 {
			nums = append(nums, n)
		} else if v.Build == "" {
			// OSGi Bundle-Version "3.4.6.1569965": the 4th part is the build.
			v.Build = p
		}
	}
	v.Major, v.Minor = nums[0], nums[1]
	if len(nums) > 2 {
		v.Patch = nums[2]
	}
	// 3.6.x prints "3.6.3--6401e4ad…": empty fields between dashes are noise.
	for _, f := range strings.FieldsFunc(suffix, func(r rune) bool { return r == '-' }) {
		if isPreRelease(f) {
			if v.Pre == "" {
				v.Pre = f
			}
			continue
		}
		if v.Build == "" {
			v.Build = f
		}
	}
	return v, nil
}

func isPreRelease(f string) bool {
	l := strings.ToLower(f)
	for _, p := range []string{"alpha", "beta", "rc", "snapshot", "m"} {
		if strings.HasPrefix(l, p) {
			rest := l[len(p):]
			if _, err := strconv.Atoi(rest); rest == "" || err == nil {
				return true
			}
		}
	}
	return false
}

// Compare orders versions numerically on major.minor.patch; a pre-release of
// X sorts before X. It returns -1, 0 or +1.
func (v Version) Compare(o Version) int {
	for _, d := range [...]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	// alpha < beta < rc happens to be lexical order.
	return strings.Compare(strings.ToLower(v.Pre), strings.ToLower(o.Pre))
}

// Less reports whether v sorts before o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// Short is "3.4.6" or "3.5.0-alpha": the part that matters to a reader.
func (v Version) Short() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// ClientAffectedBy1702 reports whether a Java client library of this version
// carries ZOOKEEPER-1702 (fixed in 3.4.6 and in every 3.5.x).
func (v Version) ClientAffectedBy1702() bool { return v.Less(fixed1702) }

// ServerImplies1702 is the seed's shortcut, for clients of unknown version:
// a server older than 3.5 suggests clients of the same era. It looks at
// major.minor only, because 3.5.0 pre-releases are already of the fixed era.
func (v Version) ServerImplies1702() bool {
	return v.Major < 3 || v.Major == 3 && v.Minor < 5
}
