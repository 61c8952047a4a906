// What to tell the student when something goes wrong, in words they understand.
import type { IpcError } from "../bindings";

export function describeError(error: IpcError): string {
  switch (error.kind) {
    case "wrong_credentials":
      return "The username or password is not right. Check them and try again.";
    case "locked_out": {
      const minutes = Math.ceil(error.retry_after_s / 60);
      return error.retry_after_s < 90
        ? `Too many attempts. Please wait ${error.retry_after_s} seconds, then try again.`
        : `Too many attempts. Please wait ${minutes} minutes, then try again.`;
    }
    case "offline":
      return "The Exam Bank server cannot be reached. Check the network, or ask your teacher.";
    case "not_signed_in":
      return "You are not signed in.";
    case "session_ended":
      return error.reason;
    case "refused":
      return `The server refused: ${error.message}`;
    case "keychain":
      return `This computer's keychain is not working (${error.message}). Ask IT for help.`;
    case "validation":
      return error.message;
    case "internal":
      return `Something went wrong inside the app: ${error.message}`;
  }
}
