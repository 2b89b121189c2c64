package zk

import "testing"

func FuzzVersion(f *testing.F) {
	for _, s := range []string{
		"3.4.6-1569965, built on 02/20/2014 09:09 GMT", "3.5.0-alpha", "3.5.3-beta",
		"3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT",
		"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
		"3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12 22:16 UTC",
		"3.4.6.1569965", "zookeeper-3.4.5.jar",
	} {
		f.Add(s, "3.4.6")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, erra := ParseVersion(a)
		vb, errb := ParseVersion(b)
		if erra != nil || errb != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("Compare not antisymmetric: %q %q", a, b)
		}
		if va.Compare(va) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		// Short must round-trip to an equal version.
		vs, err := ParseVersion(va.Short())
		if err != nil || vs.Compare(va) != 0 {
			t.Fatalf("Short %q of %q does not round-trip: %v", va.Short(), a, err)
		}
	})
}
