package netlinkmptcp

import (
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// What the generic-netlink controller (nlctrl) says about mptcp_pm: the
// family's id, its commands and multicast groups, and the attributes a
// command's policy accepts. Asking has no side effect, which makes it the
// way to learn what a kernel has: distribution kernels backport MPTCP work,
// so their version says less.

// familyInfo is the controller's description of the mptcp_pm family.
type familyInfo struct {
	id       uint16
	commands map[uint8]bool
	groups   map[string]uint32
}

// resolveFamily asks the controller for the mptcp_pm family by name. A
// kernel without it is an error matching ErrNotSupported.
func resolveFamily(conn *genetlink.Conn) (familyInfo, error) {
	const op = "resolve generic netlink family " + familyName
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, familyName)
	data, err := ae.Encode()
	if err != nil {
		return familyInfo{}, &Error{Op: op, Err: err}
	}
	msgs, err := conn.Execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETFAMILY, Version: 1},
		Data:   data,
	}, unix.GENL_ID_CTRL, netlink.Request)
	if errors.Is(err, unix.ENOENT) {
		return familyInfo{}, &sentenceError{
			text: "the kernel has no MPTCP path manager (generic netlink family mptcp_pm not found): " +
				"it was built without CONFIG_MPTCP or is older than Linux 5.12; " +
				"build it with CONFIG_MPTCP=y or upgrade to 5.12 or later",
			kind:  ErrNotSupported,
			cause: err,
		}
	}
	if err != nil {
		return familyInfo{}, opError(op, err)
	}
	if len(msgs) != 1 {
		return familyInfo{}, &Error{Op: op, Err: fmt.Errorf("controller sent %d replies, want 1", len(msgs))}
	}
	f, err := parseFamilyInfo(msgs[0].Data)
	if err != nil {
		return familyInfo{}, &Error{Op: op, Err: err}
	}
	return f, nil
}

// parseFamilyInfo decodes a CTRL_CMD_GETFAMILY reply.
func parseFamilyInfo(b []byte) (familyInfo, error) {
	f := familyInfo{commands: map[uint8]bool{}, groups: map[string]uint32{}}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return familyInfo{}, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.CTRL_ATTR_FAMILY_ID:
			f.id = ad.Uint16()
		case unix.CTRL_ATTR_OPS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(op *netlink.AttributeDecoder) error {
						for op.Next() {
							if op.Type() == unix.CTRL_ATTR_OP_ID {
								f.commands[uint8(op.Uint32())] = true
							}
						}
						return nil
					})
				}
				return nil
			})
		case unix.CTRL_ATTR_MCAST_GROUPS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(g *netlink.AttributeDecoder) error {
						var name string
						var id uint32
						for g.Next() {
							switch g.Type() {
							case unix.CTRL_ATTR_MCAST_GRP_NAME:
								name = g.String()
							case unix.CTRL_ATTR_MCAST_GRP_ID:
								id = g.Uint32()
							}
						}
						f.groups[name] = id
						return nil
					})
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return familyInfo{}, fmt.Errorf("decode family description: %w", err)
	}
	if f.id == 0 {
		return familyInfo{}, errors.New("family description without an id")
	}
	return f, nil
}

// eventsGroup is the id of the family's event group, 0 when the kernel
// (older than 5.12) has none.
func (f familyInfo) eventsGroup() uint32 { return f.groups[eventsGroupName] }

// commandAttrs returns the top-level attributes the kernel accepts with
// command cmd of the family (its "do" policy, CTRL_CMD_GETPOLICY), or nil
// when the kernel does not say (policy dumps are Linux 5.10+, per command
// 5.12+).
func commandAttrs(conn *genetlink.Conn, family uint16, cmd uint8) (map[uint16]bool, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, family)
	ae.Uint32(unix.CTRL_ATTR_OP, uint32(cmd))
	data, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	msgs, err := conn.Execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETPOLICY, Version: 1},
		Data:   data,
	}, unix.GENL_ID_CTRL, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, opError(fmt.Sprintf("dump the policy of %s command %d", familyName, cmd), err)
	}
	var payloads [][]byte
	for _, m := range msgs {
		payloads = append(payloads, m.Data)
	}
	return parsePolicyDump(payloads, cmd)
}

// parsePolicyDump finds, in the replies of a policy dump, the attributes
// of command cmd's "do" policy.
func parsePolicyDump(replies [][]byte, cmd uint8) (map[uint16]bool, error) {
	doPolicy := -1
	policies := map[uint32]map[uint16]bool{}
	for _, b := range replies {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			switch ad.Type() {
			case unix.CTRL_ATTR_OP_POLICY:
				ad.Nested(func(ops *netlink.AttributeDecoder) error {
					for ops.Next() {
						if ops.Type() != uint16(cmd) {
							continue
						}
						ops.Nested(func(p *netlink.AttributeDecoder) error {
							for p.Next() {
								if p.Type() == unix.CTRL_ATTR_POLICY_DO {
									doPolicy = int(p.Uint32())
								}
							}
							return nil
						})
					}
					return nil
				})
			case unix.CTRL_ATTR_POLICY:
				ad.Nested(func(idx *netlink.AttributeDecoder) error {
					for idx.Next() {
						attrs := policies[uint32(idx.Type())]
						if attrs == nil {
							attrs = map[uint16]bool{}
							policies[uint32(idx.Type())] = attrs
						}
						idx.Nested(func(a *netlink.AttributeDecoder) error {
							for a.Next() {
								attrs[a.Type()] = true
							}
							return nil
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode policy dump: %w", err)
		}
	}
	if doPolicy < 0 {
		return nil, nil
	}
	attrs := policies[uint32(doPolicy)]
	if attrs == nil {
		attrs = map[uint16]bool{}
	}
	return attrs, nil
}
