package zk

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in                  string
		major, minor, patch int
		pre, build, built   string
	}{
		{"3.4.6-1569965, built on 02/20/2014 09:09 GMT", 3, 4, 6, "", "1569965", "02/20/2014 09:09 GMT"},
		{"3.5.0-alpha", 3, 5, 0, "alpha", "", ""},
		{"3.5.3-beta", 3, 5, 3, "beta", "", ""},
		{"3.5.1-alpha-1693007, built on 07/28/2015 07:19 GMT", 3, 5, 1, "alpha", "1693007", "07/28/2015 07:19 GMT"},
		{"3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT", 3, 6, 3, "", "6401e4ad2087061bc6b9f80dec2d69f2e3c8660a", "04/08/2021 16:35 GMT"},
		{"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", 3, 8, 0, "", "${mvngit.commit.id}", "2024-12-29 17:54 UTC"},
		{"3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12 22:16 UTC", 3, 9, 2, "", "e454e8c7283100c7caec6dcae2bc82aaecb63023", "2024-02-12 22:16 UTC"},
		{"3.4.5", 3, 4, 5, "", "", ""},
		{"3.4.6.1569965", 3, 4, 6, "", "1569965", ""},
		{"3.4", 3, 4, 0, "", "", ""},
		{"3.4.14", 3, 4, 14, "", "", ""},
		{"3.7.0-SNAPSHOT", 3, 7, 0, "SNAPSHOT", "", ""},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if v.Major != tt.major || v.Minor != tt.minor || v.Patch != tt.patch || v.Pre != tt.pre || v.Build != tt.build || v.Built != tt.built || v.Raw != tt.in {
			t.Errorf("ParseVersion(%q) = %+v", tt.in, v)
		}
	}
	for _, bad := range []string{"", "3", "x.y.z", "Zookeeper", "-1.2.3", "3.x.1", "\x00\xff"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"3.4.5", "3.4.6", -1},
		{"3.4.6-1569965, built on 02/20/2014 09:09 GMT", "3.4.6", 0},
		{"3.4.10", "3.4.9", 1}, // numeric, not lexical
		{"3.10.0", "3.9.2", 1}, // numeric, not lexical
		{"3.5.0-alpha", "3.5.0", -1},
		{"3.5.0-alpha", "3.4.14", 1},
		{"3.5.3-beta", "3.5.3", -1},
		{"3.5.0-alpha", "3.5.0-beta", -1},
		{"3.6.3--6401e4ad", "3.6.3", 0},
		{"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", "3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023", -1},
	}
	for _, tt := range tests {
		a, _ := ParseVersion(tt.a)
		b, _ := ParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestVersion1702(t *testing.T) {
	tests := []struct {
		v              string
		client, server bool
	}{
		{"3.3.6", true, true},
		{"3.4.5", true, true},
		{"3.4.6", false, true}, // fixed in 3.4.6, but the server shortcut still applies
		{"3.4.14", false, true},
		{"3.5.0-alpha", false, false}, // 3.5.0 pre-releases carry the fix
		{"3.5.3-beta", false, false},
		{"3.5.0", false, false},
		{"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", false, false},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.ClientAffectedBy1702(); got != tt.client {
			t.Errorf("%s ClientAffectedBy1702 = %v", tt.v, got)
		}
		if got := v.ServerImplies1702(); got != tt.server {
			t.Errorf("%s ServerImplies1702 = %v", tt.v, got)
		}
	}
}
