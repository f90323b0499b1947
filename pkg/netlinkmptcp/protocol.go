package netlinkmptcp

// The numbers of the mptcp_pm generic-netlink family, from the kernel's
// include/uapi/linux/mptcp_pm.h. golang.org/x/sys/unix has none of them.

const (
	familyName      = "mptcp_pm"
	familyVersion   = 1
	eventsGroupName = "mptcp_pm_events"
)

// Commands.
const (
	cmdAddAddr        = 1
	cmdDelAddr        = 2
	cmdGetAddr        = 3
	cmdFlushAddrs     = 4
	cmdSetLimits      = 5
	cmdGetLimits      = 6
	cmdSetFlags       = 7
	cmdAnnounce       = 8
	cmdRemove         = 9
	cmdSubflowCreate  = 10
	cmdSubflowDestroy = 11
)

// Top-level command attributes (MPTCP_PM_ATTR_*).
const (
	attrAddr        = 1 // nested address
	attrRcvAddAddrs = 2 // u32
	attrSubflows    = 3 // u32
	attrToken       = 4 // u32
	attrLocID       = 5 // u8
	attrAddrRemote  = 6 // nested address
)

// Address nest attributes (MPTCP_PM_ADDR_ATTR_*).
const (
	addrAttrFamily = 1 // u16, host order
	addrAttrID     = 2 // u8
	addrAttrAddr4  = 3 // 4 bytes, network order
	addrAttrAddr6  = 4 // 16 bytes
	addrAttrPort   = 5 // u16, host order
	addrAttrFlags  = 6 // u32
	addrAttrIfIdx  = 7 // s32
)

// Event attributes (MPTCP_ATTR_*).
const (
	evAttrToken       = 1  // u32
	evAttrFamily      = 2  // u16
	evAttrLocID       = 3  // u8
	evAttrRemID       = 4  // u8
	evAttrSaddr4      = 5  // 4 bytes
	evAttrSaddr6      = 6  // 16 bytes
	evAttrDaddr4      = 7  // 4 bytes
	evAttrDaddr6      = 8  // 16 bytes
	evAttrSport       = 9  // u16, network order
	evAttrDport       = 10 // u16, network order
	evAttrBackup      = 11 // u8
	evAttrError       = 12 // u8
	evAttrFlags       = 13 // u16
	evAttrTimeout     = 14 // u32
	evAttrIfIdx       = 15 // s32
	evAttrResetReason = 16 // u32
	evAttrResetFlags  = 17 // u32
	evAttrServerSide  = 18 // u8
)
