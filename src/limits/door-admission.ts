import { AsyncLocalStorage } from "node:async_hooks";

/**
 * An operation whose rate-limit point was already spent at the door (the HTTP service decides the
 * rate limit from the key alone, before it reads the body). The gate then does not spend a second
 * point for it. Carried through the request's async context, so the data manager's public
 * signatures stay as they are; one admission covers one gated operation.
 */
interface DoorAdmission {
  tenantId: string;
  used: boolean;
}

const admissions = new AsyncLocalStorage<DoorAdmission>();

/** Runs `fn` with the tenant's rate-limit point already spent for its first gated operation. */
export function withDoorAdmission<T>(tenantId: string, fn: () => T): T {
  return admissions.run({ tenantId, used: false }, fn);
}

/** True once — for the first gated operation of `tenantId` in a context admitted at the door. */
export function takeDoorAdmission(tenantId: string): boolean {
  const admission = admissions.getStore();
  if (!admission || admission.used || admission.tenantId !== tenantId) return false;
  admission.used = true;
  return true;
}
