import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { getState, setState, useStore } from "../store";
import type { Role, User } from "../types";
import { Confirm } from "./dialog";
import { Avatar } from "./inbox";
import { LabelsSection, QuickRepliesSection } from "./manage";

const ROLE_LABEL: Record<Role, string> = { owner: "Owner", admin: "Admin", agent: "Agent" };

export function Team() {
  const me = useStore((s) => s.user);
  const manager = me?.role === "owner" || me?.role === "admin";
  const [members, setMembers] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ id: string; message: string } | null>(null);
  const [removing, setRemoving] = useState<User | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.team().then(
      (p) => setMembers(p.items),
      (e) => setError((e as Error).message),
    );
  }, []);
  // The assign menu and mentions read the team from the store.
  useEffect(() => {
    if (members) setState({ team: members });
  }, [members]);

  async function changeRole(u: User, role: Role) {
    setRowError(null);
    try {
      const updated = await api.updateMember(u.id, { role });
      setMembers((ms) => ms?.map((m) => (m.id === u.id ? updated : m)) ?? null);
      if (updated.id === getState().user?.id) setState({ user: updated });
    } catch (e) {
      setRowError({ id: u.id, message: (e as Error).message });
      setMembers((ms) => (ms ? [...ms] : ms));
    }
  }

  async function remove(u: User) {
    setBusy(true);
    try {
      await api.removeMember(u.id);
      setMembers((ms) => ms?.filter((m) => m.id !== u.id) ?? null);
      setRemoving(null);
    } catch (e) {
      setRowError({ id: u.id, message: (e as Error).message });
      setRemoving(null);
    } finally {
      setBusy(false);
    }
  }

  const roles: Role[] = me?.role === "owner" ? ["agent", "admin", "owner"] : ["agent", "admin"];

  return (
    <div class="page">
      <header class="page-head">
        <h1>Team</h1>
        <p class="muted">
          {manager
            ? "Everyone here answers the same inbox. Owners and admins manage the team, its labels and quick replies; only an owner can make or change owners."
            : "Everyone here answers the same inbox. Only owners and admins can manage the team."}
        </p>
      </header>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <section class="card" aria-labelledby="members-title">
        <h2 id="members-title">Members {members && <span class="count">{members.length}</span>}</h2>
        {members === null && !error && <p class="muted">Loading…</p>}
        <ul class="members">
          {members?.map((u) => {
            const self = u.id === me?.id;
            const canEdit = manager && (u.role !== "owner" || me?.role === "owner");
            return (
              <li key={u.id} class="member" data-email={u.email}>
                <Avatar name={u.name} id={u.email} />
                <div class="member-main">
                  <span class="member-name">
                    {u.name}
                    {u.id === me?.id && <span class="tag">You</span>}
                  </span>
                  <span class="muted">{u.email}</span>
                  {rowError?.id === u.id && (
                    <span class="form-error" role="alert">
                      {rowError.message}
                    </span>
                  )}
                </div>
                {canEdit ? (
                  <div class="member-actions">
                    <label class="sr-only" for={`role-${u.id}`}>
                      Role of {u.name}
                    </label>
                    <select
                      id={`role-${u.id}`}
                      value={u.role}
                      onChange={(e) =>
                        void changeRole(u, (e.currentTarget as HTMLSelectElement).value as Role)
                      }
                    >
                      {(u.role === "owner" || me?.role === "owner"
                        ? (["agent", "admin", "owner"] as Role[])
                        : roles
                      ).map((r) => (
                        <option key={r} value={r}>
                          {ROLE_LABEL[r]}
                        </option>
                      ))}
                    </select>
                    {!self && (
                      <button
                        type="button"
                        class="btn btn-danger-outline btn-sm"
                        onClick={() => setRemoving(u)}
                      >
                        Remove<span class="sr-only"> {u.name}</span>
                      </button>
                    )}
                  </div>
                ) : (
                  <span class={`role role-${u.role}`}>{ROLE_LABEL[u.role]}</span>
                )}
              </li>
            );
          })}
        </ul>
      </section>
      {manager && (
        <AddMember roles={roles} onAdded={(u) => setMembers((ms) => [...(ms ?? []), u])} />
      )}
      <LabelsSection manager={manager} />
      <QuickRepliesSection manager={manager} />
      {removing && (
        <Confirm
          title={`Remove ${removing.name}?`}
          confirm="Remove"
          danger
          busy={busy}
          onClose={() => setRemoving(null)}
          onConfirm={() => void remove(removing)}
        >
          <p>
            {removing.name} ({removing.email}) loses access at once: they are signed out everywhere.
            Their messages stay in the conversations.
          </p>
        </Confirm>
      )}
    </div>
  );
}

function AddMember(props: { roles: Role[]; onAdded: (u: User) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const v = (k: string) => String(f.get(k) ?? "");
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const u = await api.addMember({
        name: v("name"),
        email: v("email"),
        password: v("password"),
        role: v("role") as Role,
      });
      props.onAdded(u);
      form.reset();
      const role = form.elements.namedItem("role");
      if (role instanceof HTMLSelectElement) role.value = "agent";
      setDone(`${u.name} was added. Give them their email and password to sign in.`);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <section class="card" aria-labelledby="add-title">
      <h2 id="add-title">Add a member</h2>
      <form class="form form-grid" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input name="name" required autoComplete="off" />
        </label>
        <label class="field">
          <span>Email</span>
          <input name="email" type="email" required autoComplete="off" />
        </label>
        <label class="field">
          <span>Temporary password</span>
          <input
            name="password"
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
          />
        </label>
        <label class="field">
          <span>Role</span>
          <select name="role">
            {props.roles.map((r) => (
              <option key={r} value={r}>
                {ROLE_LABEL[r]}
              </option>
            ))}
          </select>
        </label>
        {error && (
          <p class="form-error span-all" role="alert">
            {error}
          </p>
        )}
        {done && (
          <p class="notice span-all" role="status">
            {done}
          </p>
        )}
        <div class="span-all">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            Add member
          </button>
        </div>
      </form>
    </section>
  );
}
