package wire

import "fmt"

// Word is a four-letter word rstwatch may send. Its field is unexported and
// the only constructors are the read-only words below, so that kill, srst,
// crst, dump, wchc, wchp or anything else cannot be sent through this
// package, not even by mistake.
type Word struct{ w string }

func Ruok() Word { return Word{"ruok"} }
func Srvr() Word { return Word{"srvr"} }
func Stat() Word { return Word{"stat"} }
func Cons() Word { return Word{"cons"} }
func Envi() Word { return Word{"envi"} }
func Mntr() Word { return Word{"mntr"} }
func Conf() Word { return Word{"conf"} }
func Isro() Word { return Word{"isro"} }

// SafeWords lists every word Word can hold, in the order a full probe asks.
func SafeWords() []Word {
	return []Word{Srvr(), Stat(), Cons(), Mntr(), Envi(), Conf(), Ruok(), Isro()}
}

// ParseWord accepts only the safe words, for CLIs taking a word by name.
func ParseWord(s string) (Word, error) {
	for _, w := range SafeWords() {
		if w.w == s {
			return w, nil
		}
	}
	return Word{}, fmt.Errorf("four-letter word %q is not one rstwatch sends (safe words: ruok srvr stat cons envi mntr conf isro)", s)
}

func (w Word) String() string {
	if w.w == "" {
		return "(no word)"
	}
	return w.w
}

// adminCommand is the AdminServer command giving the same data, "" if none.
func (w Word) adminCommand() string {
	switch w.w {
	case "srvr":
		return "srvr"
	case "stat":
		return "stat"
	case "cons":
		return "connections"
	case "envi":
		return "environment"
	case "mntr":
		return "monitor"
	case "conf":
		return "configuration"
	case "isro":
		return "is_read_only"
	case "ruok":
		return "ruok"
	}
	return ""
}
