// The catalogue as types: which `data` goes with which event type, and which event types
// a subscription's `events` patterns select. Everything here derives from the generated
// declarations (`generated/`, from the server's JSON Schemas), so a new event or a
// changed payload reaches the application's types by regenerating, never by hand.
/** Whether `pattern` selects `eventType` (`*` one segment, `**` any number), as the server decides. */
export function typeMatches(pattern, eventType) {
    const p = pattern.split(".");
    const t = eventType.split(".");
    // row[j]: the pattern's first i segments match the type's first j segments.
    let row = t.map(() => false).concat(false);
    row[0] = true;
    for (const seg of p) {
        const next = row.map(() => false);
        if (seg === "**") {
            let any = false;
            for (let j = 0; j <= t.length; j++)
                next[j] = any ||= row[j];
        }
        else {
            for (let j = 1; j <= t.length; j++)
                next[j] = row[j - 1] && (seg === "*" || seg === t[j - 1]);
        }
        row = next;
    }
    return row[t.length];
}
/** Narrows a frame to one event type: `if (isEvent(f, "chat.message.stored")) f.event.data.content`. */
export function isEvent(frame, type) {
    return frame.event.type === type;
}
