#!/bin/bash
# The sender-domain qmail-queue wrapper of seed 003 (Qmail Quickstarter, "Hiding Multiple Queues from the User"),
# as printed there (its NUL bytes restored), with qmail-queue-real replaced by `quail queue-inject` and a few
# test domains that refuse, defer or hang the way other filters do.
# Read envelope data (from file descriptor 1)
read -u 1 -d $'\0' sender
while read -u 1 -d $'\0' recipient ; do
  [ -z "$recipient" ] && break
  recipients[${#recipients[*]}]="$recipient"
done
# Build the envelope data back up
TMPFILE="$(mktemp -t qmailqueue.XXXXXXXXXXXXXXXXXX)"
printf '%s\0' "$sender" > "$TMPFILE"
for ((i=0;$i<${#recipients[*]};i=$i+1)) ; do
  printf '%s\0' "${recipients[$i]}" >> "$TMPFILE"
done
printf '\0' >> $TMPFILE
# Extract the domain from the sender's address
FROMDOMAIN="${sender##*@}"
# turn on case-insensitive matching
shopt -s -q nocasematch
# Invoke the domain-specific qmail-queue binary
case "$FROMDOMAIN" in
  refused.test)
    printf 'Dsorry, refused.test may not send through this server (#5.7.1)' >&4
    exitvalue=31 ;;
  denied.test)
    exitvalue=31 ;;
  busy.test)
    exitvalue=71 ;;
  hang.test)
    sleep 3599
    exitvalue=0 ;;
  *)
    quail queue-inject 1<"$TMPFILE"
    exitvalue=$? ;;
esac
# cleanup
rm -f "$TMPFILE"
exit $exitvalue
