import { useStore } from "../store";
import type { Label } from "../types";

/** A label as a small chip: its colour as a dot, its name as text. */
export function LabelChip(props: { label: Label }) {
  const { label } = props;
  return (
    <span class="chip" data-label={label.name} style={{ "--chip": label.color }}>
      <span class="chip-dot" aria-hidden="true" />
      {label.name}
    </span>
  );
}

/** A conversation's labels, in the tenant's order (unknown ids are skipped). */
export function LabelChips(props: { ids: string[]; max?: number }) {
  const labels = useStore((s) => s.labels);
  const shown = labels.filter((l) => props.ids.includes(l.id));
  if (shown.length === 0) return null;
  const max = props.max ?? shown.length;
  return (
    <span class="chips">
      <span class="sr-only">Labels: </span>
      {shown.slice(0, max).map((l) => (
        <LabelChip key={l.id} label={l} />
      ))}
      {shown.length > max && <span class="chip chip-more">+{shown.length - max}</span>}
    </span>
  );
}
