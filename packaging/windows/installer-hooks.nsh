; Exam Bank Desktop: hooks into the NSIS installer Tauri generates
; (tauri.conf.json > bundle > windows > nsis > installerHooks).
;
; Uninstalling removes the program only. What each user's sessions of the app made stays, on
; purpose: a student's answers may still be waiting to be delivered, and the uninstaller runs
; as an administrator who cannot open anyone's Credential Manager. This hook only says what
; stays and how to remove it; it deletes nothing. (Tauri's own "Delete the application data"
; box removes the uninstalling account's %LOCALAPPDATA%\org.exambank.desktop and
; %APPDATA%\org.exambank.desktop only: the window's storage, never the answers.)
;
; Nothing is said when the app's updater or IT's tool replaces the version (/UPDATE): that is
; an upgrade, not an uninstall. A silent (/S) or passive (/P) uninstall writes the text to
; the details log only.

!macro NSIS_HOOK_POSTUNINSTALL
  ${If} $UpdateMode <> 1
    DetailPrint "Exam Bank Desktop was removed. What it kept for each user stays on this computer:"
    DetailPrint "  - each account's data folder, %LOCALAPPDATA%\Exam Bank\exam-desktop\data (or the data_dir the configuration sets): answers not yet delivered, receipts, logs"
    DetailPrint "  - each account's Windows Credential Manager entries ending in .org.exambank.desktop: saved sign-ins, delivery credentials, answer keys"
    DetailPrint "  - the window's storage, %LOCALAPPDATA%\org.exambank.desktop, and a user's own settings, %APPDATA%\Exam Bank\exam-desktop\config"
    DetailPrint "  - IT's managed configuration, %ProgramData%\ExamDesktop\config.toml, and the policies under Software\Policies\ExamDesktop"
    DetailPrint "Before uninstalling, each user can remove theirs with: exam-desktop doctor --purge --yes"
    ${IfNot} ${Silent}
    ${AndIf} $PassiveMode <> 1
      MessageBox MB_OK|MB_ICONINFORMATION "Exam Bank Desktop was removed.$\r$\n$\r$\nWhat it kept for each user stays on this computer: each account's data folder (%LOCALAPPDATA%\Exam Bank\exam-desktop\data - answers not yet delivered, receipts, logs), its Credential Manager entries ending in .org.exambank.desktop (saved sign-ins, delivery credentials, answer keys), the window's storage (%LOCALAPPDATA%\org.exambank.desktop) and IT's managed configuration (%ProgramData%\ExamDesktop, Software\Policies\ExamDesktop).$\r$\n$\r$\nTo remove a user's data and keychain entries, run as that user before uninstalling:$\r$\n    exam-desktop doctor --purge --yes$\r$\nIt refuses while answers wait to be delivered (export them first with: exam-desktop queue export --out FILE)." /SD IDOK
    ${EndIf}
  ${EndIf}
!macroend
