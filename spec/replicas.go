package spec

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// MaxReplicas is the largest service.replicas.
const MaxReplicas = 1000

// A replicated workload (service.replicas) is a template unit,
// cove-NAME@.service, and N instances of it, cove-NAME@1.service …
// cove-NAME@N.service. An instance's workload name is NAME@I: what its
// unit name gives (NameOfUnit), what cove's commands take, what its state
// is kept under. No spec's name contains instanceSep, so no workload's
// name is an instance's.
const instanceSep = "@"

// TemplateUnitName returns the template unit of replicated workload name.
func TemplateUnitName(name string) string { return unitPrefix + name + instanceSep + serviceSuffix }

// InstanceName returns the workload name of instance i of name.
func InstanceName(name string, i int) string { return name + instanceSep + strconv.Itoa(i) }

// InstancePattern matches the units of every instance of name (a
// ListUnitsByPatterns glob).
func InstancePattern(name string) string {
	return unitPrefix + name + instanceSep + "*" + serviceSuffix
}

// SplitInstance returns the workload and the number of instance name
// NAME@I (1 ≤ I ≤ MaxReplicas, written without leading zeros); ok is
// false for any other name.
func SplitInstance(name string) (base string, i int, ok bool) {
	base, num, found := strings.Cut(name, instanceSep)
	if !found || base == "" {
		return "", 0, false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 1 || i > MaxReplicas || strconv.Itoa(i) != num {
		return "", 0, false
	}
	return base, i, true
}

// splitRef returns the workload and instance number of name: NAME@I's,
// or name itself and 0.
func splitRef(name string) (base string, i int) {
	if base, i, ok := SplitInstance(name); ok {
		return base, i
	}
	return name, 0
}

// BaseName returns the workload of instance name, or name itself.
func BaseName(name string) string {
	base, _ := splitRef(name)
	return base
}

// CompareNames orders workload names as cove ps lists them: by name,
// a replicated workload's instances together and by number (web@2
// before web@10).
func CompareNames(a, b string) int {
	baseA, i := splitRef(a)
	baseB, j := splitRef(b)
	return cmp.Or(strings.Compare(baseA, baseB), cmp.Compare(i, j))
}

// ValidRef returns nil if name is a valid workload name (ValidName) or
// an instance's, NAME@I: what cove's commands and its state directories
// take.
func ValidRef(name string) error {
	if base, _, ok := SplitInstance(name); ok {
		return ValidName(base)
	}
	return ValidName(name)
}

// replicas checks service.replicas against what its instances would
// share: more than one cannot publish the same host ports, hold the same
// address or write the same root directory; health checks are not
// compiled for templates; a VM's disks are its own.
func (v *validator) replicas(s *Spec) {
	n := s.Service.Replicas
	switch {
	case n == 0:
		return
	case s.Kind == KindVM:
		v.add("service.replicas", `replicas applies to kind "container" only: a VM's disks are its own`)
		return
	case s.Health != nil:
		v.add("service.replicas", "a replicated workload cannot have a [health] check yet; remove one of the two")
	}
	if n == 1 || s.Container == nil {
		return
	}
	c := s.Container
	if len(c.Ports) > 0 {
		v.add("container.ports", fmt.Sprintf("%d replicas cannot publish the same host ports; publish them from one workload, or use replicas = 1", n))
	}
	if c.IP != "" {
		v.add("container.ip", fmt.Sprintf("%d replicas cannot hold one address; leave ip out", n))
	}
	if c.Rootfs != "" && !c.ReadOnly && !c.Volatile {
		v.add("service.replicas", fmt.Sprintf("%d replicas would write one root directory; set container.read_only or container.volatile, or run an image (each instance gets its own writable layer)", n))
	}
}

// CheckSharedTargets checks, across a set of specs (the declared ones),
// what container.network = "container:NAME" needs of NAME when NAME is in
// the set: a container (not a VM) that does not share another's namespace
// itself, and for a replicated one an instance within its replicas
// (NAME@I), not NAME alone, whose unit is a template. Each problem is an
// error at the sharer's key; a NAME not in the set is left to the start.
func CheckSharedTargets(specs []*Spec) Errors {
	byName := map[string]*Spec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	var errs Errors
	for _, s := range specs {
		if s.Container == nil {
			continue
		}
		ref, ok := SharedNetwork(s.Container.Network)
		if !ok {
			continue
		}
		base, i := splitRef(ref)
		if t := byName[base]; t != nil {
			if msg := sharedTargetProblem(t, ref, i); msg != "" {
				errs = append(errs, s.KeyError("container.network", msg))
			}
		}
	}
	return errs
}

// sharesNetwork reports whether container c shares another's network
// namespace (SharedNetwork).
func sharesNetwork(c *Container) bool {
	_, ok := SharedNetwork(c.Network)
	return ok
}

// sharedTargetProblem is what is wrong with sharing the network namespace
// of ref, instance i (0: none named) of t; "" when nothing is.
func sharedTargetProblem(t *Spec, ref string, i int) string {
	n := t.Service.Replicas
	switch {
	case t.Container == nil:
		return fmt.Sprintf("%s is a VM: only a container's network namespace can be shared", ref)
	case sharesNetwork(t.Container):
		return fmt.Sprintf("%s shares another container's network namespace itself (%s): share that one's", ref, t.Container.Network)
	case n > 0 && i == 0:
		return fmt.Sprintf("%s is replicated (service.replicas = %d): name one instance, %s%s", ref, n, NetworkSharedPrefix, InstanceName(ref, 1))
	case i > 0 && (n == 0 || i > n):
		return fmt.Sprintf("%s names an instance %s does not have (service.replicas = %d)", ref, t.Name, n)
	}
	return ""
}
