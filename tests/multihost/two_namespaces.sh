#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair, Open MPI launching the remote rank through
# an rsh agent that runs `ip netns exec`, ranks talking TCP only (shared-memory transport off). Runs the data-parallel
# host's session mode across them and, as the reference, in one process without MPI.
# Usage: two_namespaces.sh <RegNetML.DataParallelHost.dll> <output folder>. Needs root, iproute2 and Open MPI.
# Prints the namespace of each rank, then writes <out>/dp.rank0, dp.rank1 and ref.rank0 (parameters then gradients).
set -euo pipefail
host_dll=$1; out=$2
mkdir -p "$out"
id=$$; ns1=rgn1-$id; ns2=rgn2-$id; a=10.77.$((id % 200)).1; b=10.77.$((id % 200)).2; net=10.77.$((id % 200)).0/24
cleanup() { ip netns del "$ns1" 2>/dev/null || true; ip netns del "$ns2" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns1"; ip netns add "$ns2"
ip link add "v1-$id" type veth peer name "v2-$id"
ip link set "v1-$id" netns "$ns1"; ip link set "v2-$id" netns "$ns2"
ip -n "$ns1" addr add "$a/24" dev "v1-$id"; ip -n "$ns2" addr add "$b/24" dev "v2-$id"
for ns in "$ns1" "$ns2"; do ip -n "$ns" link set lo up; done
ip -n "$ns1" link set "v1-$id" up; ip -n "$ns2" link set "v2-$id" up

agent="$out/agent.sh"
cat > "$agent" <<AGENT
#!/bin/sh
# Open MPI's rsh agent: [options] host command... -> the command in that host's network namespace.
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case "\$host" in $a) ns=$ns1;; $b) ns=$ns2;; *) echo "unknown host \$host" >&2; exit 1;; esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$agent"
printf '%s slots=1\n%s slots=1\n' "$a" "$b" > "$out/hosts"

export TERM=dumb
mpi=(mpirun --allow-run-as-root -np 2 --hostfile "$out/hosts" --mca plm_rsh_agent "$agent"
     --mca btl tcp,self --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" -x TERM -x PATH -x DOTNET_ROOT)
ip netns exec "$ns1" "${mpi[@]}" sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in $(ip netns identify $$)"'
ip netns exec "$ns1" "${mpi[@]}" dotnet "$host_dll" session "$out/dp" --batch 4 --steps 5
dotnet "$host_dll" session "$out/ref" --batch 4 --steps 5 --off
