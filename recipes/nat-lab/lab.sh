#!/usr/bin/env bash
# Builds the NAT lab by hand (the same topology test/helpers/natlab.ts builds for tests).
#
#   sudo recipes/nat-lab/lab.sh up        build: inet, r1..r4 + h1..h4, p1
#   sudo recipes/nat-lab/lab.sh down      delete every namespace named natlab-* (kills what runs there)
#   sudo recipes/nat-lab/lab.sh status    list the lab's namespaces and the routers' NAT rules
#   sudo ip netns exec natlab-h1 bash     a shell on the host behind the eim-pr NAT
#
# Namespaces are natlab-<role>; tests use mlab<pid>x<n>-<role> instead, so the two never meet.
set -euo pipefail

P=${NATLAB_PREFIX:-natlab-}
GW=203.0.113.1
INET_A=203.0.113.10
INET_B=203.0.113.11
# One router per entry: index -> NAT kind (eim-pr, eim-fc, sym, eim-ar).
KINDS=(eim-pr eim-fc sym eim-ar)

need() { command -v "$1" >/dev/null 2>&1 || { echo "lab.sh: needs $1 ($2)" >&2; exit 1; }; }

newns() { # newns ROLE: a namespace with lo up and no reverse-path filtering
  ip netns add "$P$1"
  ip -n "$P$1" link set lo up
  ip netns exec "$P$1" sh -c 'echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter
    echo 0 >/proc/sys/net/ipv4/conf/default/rp_filter'
}

wanlink() { # wanlink NS INET_IF NS_IF ADDR: a routed /32 link from inet to NS
  local ns=$P$1 inetif=$2 nsif=$3 addr=$4
  ip -n "${P}inet" link add "$inetif" type veth peer name "$nsif" netns "$ns"
  ip -n "${P}inet" addr add "$GW/32" dev "$inetif"
  ip -n "${P}inet" link set "$inetif" up
  ip -n "${P}inet" route add "$addr/32" dev "$inetif" src "$INET_A"
  ip -n "$ns" addr add "$addr/32" dev "$nsif"
  ip -n "$ns" link set "$nsif" up
  ip -n "$ns" route add "$GW/32" dev "$nsif"
  ip -n "$ns" route add default via "$GW" dev "$nsif"
}

up() {
  need ip "apt-get install iproute2"
  need iptables "apt-get install iptables"
  [[ $(id -u) -eq 0 ]] || { echo "lab.sh: run as root" >&2; exit 1; }

  # The internet: one namespace that routes between all WAN links and is a host itself.
  newns inet
  ip netns exec "${P}inet" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
  ip -n "${P}inet" addr add "$INET_A/32" dev lo
  ip -n "${P}inet" addr add "$INET_B/32" dev lo

  local n kind r h
  for i in "${!KINDS[@]}"; do
    n=$((i + 1)) kind=${KINDS[$i]} r=${P}r$n h=${P}h$n
    newns "r$n"
    ip netns exec "$r" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
    wanlink "r$n" "r$n" wan "203.0.113.$((100 + n))"
    newns "h$n"
    ip -n "$r" link add lan type veth peer name eth0 netns "$h"
    ip -n "$r" addr add "10.$n.0.1/24" dev lan
    ip -n "$r" link set lan up
    ip -n "$h" addr add "10.$n.0.2/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" route add default via "10.$n.0.1"
    ipt() { ip netns exec "$r" iptables -w 5 "$@"; }
    case $kind in
      eim-pr) # endpoint-independent mapping, address-and-port-dependent filtering
        ipt -t nat -A POSTROUTING -o wan -j MASQUERADE ;;
      sym) # a new random port per destination
        ipt -t nat -A POSTROUTING -o wan -j MASQUERADE --random ;;
      eim-fc) # full cone: inbound UDP matching no connection goes to the host, same port
        ipt -t nat -A POSTROUTING -o wan -j MASQUERADE
        ipt -t nat -A PREROUTING -i wan -p udp -j DNAT --to "10.$n.0.2" ;;
      eim-ar) # address-restricted: only from addresses the host has sent to, any port
        ipt -t nat -A POSTROUTING -o wan -j MASQUERADE
        ipt -A FORWARD -i lan -o wan -p udp -m recent --name ar --rdest --set
        ipt -t nat -A PREROUTING -i wan -p udp -m recent --name ar --rsource --rcheck \
          --seconds 300 -j DNAT --to "10.$n.0.2"
        ipt -A INPUT -i wan -m conntrack --ctstate NEW -j DROP ;;
    esac
  done

  # A host directly on the internet, no NAT.
  newns p1
  wanlink p1 p1 eth0 203.0.113.21
  status
}

down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do
    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns"
    echo "deleted $ns"
  done
}

status() {
  ip netns list | grep "^$P" || echo "no ${P}* namespaces"
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^${P}r" || true); do
    echo "== $ns"
    ip netns exec "$ns" iptables-save | grep -E '^-A' || true
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
