package workload

// index maps keys to what the node said about them. Entries whose source
// disappears (a removed cgroup, a deleted pod's directory) are kept, so an
// owner that exited before its reset is still named, up to maxGone of them;
// then the longest gone are forgotten first.
type index[K comparable, V any] struct {
	m       map[K]entry[V]
	gone    []K // in the order they vanished; may hold revived keys
	maxGone int
}

type entry[V any] struct {
	v    V
	gone bool
}

func newIndex[K comparable, V any](maxGone int) *index[K, V] {
	return &index[K, V]{m: map[K]entry[V]{}, maxGone: maxGone}
}

func (x *index[K, V]) get(k K) (V, bool) {
	e, ok := x.m[k]
	return e.v, ok
}

// put records k, and says whether it is news.
func (x *index[K, V]) put(k K, v V) bool {
	_, had := x.m[k]
	x.m[k] = entry[V]{v: v}
	return !had
}

// vanish marks k gone and returns the keys forgotten to keep the bound.
func (x *index[K, V]) vanish(k K) (forgotten []K) {
	e, ok := x.m[k]
	if !ok || e.gone {
		return nil
	}
	e.gone = true
	x.m[k] = e
	x.gone = append(x.gone, k)
	for len(x.gone) > x.maxGone {
		old := x.gone[0]
		x.gone = x.gone[1:]
		if e, ok := x.m[old]; ok && e.gone {
			delete(x.m, old)
			forgotten = append(forgotten, old)
		}
	}
	return forgotten
}

// sync takes a full listing: every key in it is live, every other known
// key has vanished. It returns whether anything was new, and the keys
// forgotten.
func (x *index[K, V]) sync(seen map[K]V) (news bool, forgotten []K) {
	for k, v := range seen {
		if x.put(k, v) {
			news = true
		}
	}
	for k, e := range x.m {
		if _, ok := seen[k]; !ok && !e.gone {
			forgotten = append(forgotten, x.vanish(k)...)
		}
	}
	return news, forgotten
}

// live calls f for every key that is still there.
func (x *index[K, V]) live(f func(K, V)) {
	for k, e := range x.m {
		if !e.gone {
			f(k, e.v)
		}
	}
}
