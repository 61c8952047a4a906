#!/bin/sh
# Exam Bank Desktop: after the package is removed (Debian `postrm`, RPM `%postun`).
#
# Removing the package takes away the program only. What each user's sessions of the app made
# stays, on purpose: a student's answers may still be waiting to be delivered, and the
# package manager runs as root and cannot open anyone's keychain. This script only tells the
# administrator what stays and how to remove it; it deletes nothing.
#
# Debian calls it with `remove`, `purge`, `upgrade`, `failed-upgrade`, `abort-*`…; RPM with
# the number of versions left installed (0 = erased, 1 or more = upgraded). An upgrade —
# the app's own updater or IT's tool installing a newer package — says nothing.
case "${1:-}" in
  remove | 0) ;;
  *) exit 0 ;;
esac

cat <<'MESSAGE'

Exam Bank Desktop was removed. What it kept for each user stays on this computer:

  - the data folder of each user account that used it, ~/.local/share/exam-desktop
    (or the data_dir the configuration sets): answers not yet delivered, receipts,
    logs, databases set aside as damaged;
  - the window's own storage, ~/.local/share/org.exambank.desktop (no answers);
  - each user's entries in the OS keychain under the service org.exambank.desktop:
    saved sign-ins, delivery credentials and answer keys;
  - a user's own settings file, ~/.config/exam-desktop/config.toml, if one was made;
  - IT's managed configuration, /etc/exam-desktop/ (config.toml, policies/).

To remove a user's data folder and keychain entries, run as that user, in their desktop
session, BEFORE uninstalling (reinstall the package to do it now):

    exam-desktop doctor --purge          # says what would be removed
    exam-desktop doctor --purge --yes    # removes it

It refuses while answers wait to be delivered or were refused by the server: deliver them
(start the app online), or save them with `exam-desktop queue export --out FILE` and add
--force. By hand instead: rm -rf ~/.local/share/exam-desktop ~/.local/share/org.exambank.desktop
and `secret-tool clear service org.exambank.desktop` in the user's session.
The managed configuration in /etc/exam-desktop/ is IT's: remove it when no longer wanted.

MESSAGE
exit 0
