/**
 * Starting points for `greentic-flow new <id> --template ...`. Each one validates as written and
 * runs on built-in nodes only, so it works before any component exists; the comments show where
 * a component call goes.
 */

export const TEMPLATE_NAMES = ['qa', 'webhook', 'timer'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export function flowTemplate(template: TemplateName, id: string): string {
  switch (template) {
    case 'qa':
      return `id: ${id}
type: messaging
title: ${titleOf(id)}
description: Ask a few questions, then answer from what the user said.
parameters:
  greeting: "Hi! A couple of questions first."
meta:
  error_reply: "Sorry, something went wrong. Please try again."
nodes:
  ask:
    qa.process:
      welcome: "{{parameters.greeting}}"
      questions:
        - id: name
          prompt: "What is your name?"
          answer_type: text
          max_words: 3
        - id: topic
          prompt: "What can I help you with?"
          answer_type: choice
          choices: [Billing, Support, Other]
    routing:
      - to: billing
        condition: in.topic == "Billing"
      - to: answer
  billing:
    reply: "Thanks {{in.name}}, a billing specialist will get back to you."
    routing: out
  answer:
    # A component call would go here, e.g.
    #   mcp.exec: { component: helpdesk, action: open_ticket, args: { name: in.name, topic: in.topic } }
    templating.handlebars:
      text: "Thanks {{in.name}}, I noted your question about {{in.topic}}."
    routing: out
`;
    case 'webhook':
      return `id: ${id}
type: webhook
title: ${titleOf(id)}
description: Answer an inbound webhook call from its payload.
nodes:
  check:
    templating.handlebars:
      text: "{{message.text}}"
      reply: false
    routing:
      - to: empty
        condition: message.text == ""
      - to: accepted
  empty:
    reply:
      card: { accepted: false, reason: "empty payload" }
    routing: out
  accepted:
    # Process the payload with a component, e.g.
    #   component.exec: { component: orders, operation: ingest, args: { body: message.text } }
    reply:
      card:
        accepted: true
        received: "{{message.text}}"
        id: "{{message.id}}"
    routing: out
`;
    case 'timer':
      return `id: ${id}
type: timer
title: ${titleOf(id)}
description: Runs on a schedule; bind it under a tenant env's 'timers:' in the bundle.
# Bundle binding (greentic.yaml):
#   tenants.<tenant>.envs.<env>.timers:
#     ${id}: { pack: <pack>, flow: ${id}, cron: "0 7 * * 1-5", timezone: Europe/Paris }
nodes:
  tick:
    # A component call would go here, e.g.
    #   mcp.exec: { component: reports, action: daily_digest, args: { at: message.action.tick.scheduledAt } }
    templating.handlebars:
      text: "tick {{message.action.tick.id}} scheduled at {{message.action.tick.scheduledAt}}"
    routing: out
`;
  }
}

function titleOf(id: string): string {
  const words = id.split(/[_-]+/).filter(Boolean);
  return words.map((w, i) => (i === 0 ? w[0]!.toUpperCase() + w.slice(1) : w)).join(' ') || id;
}
