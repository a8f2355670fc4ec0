use crate::format;
use leptos::prelude::*;
use mailferry_shared::SkippedMessageView;

/// The messages that could not be copied, each with its reason in plain words.
#[component]
pub fn SkippedList(#[prop(into)] messages: Signal<Vec<SkippedMessageView>>) -> impl IntoView {
    move || {
        let messages = messages.get();
        if messages.is_empty() {
            return view! { <p class="muted">"No message was skipped."</p> }.into_any();
        }
        view! {
            <div class="table-wrap">
                <table class="data skipped">
                    <thead>
                        <tr>
                            <th scope="col">"Folder"</th>
                            <th scope="col">"Message"</th>
                            <th scope="col" class="num">"Size"</th>
                            <th scope="col">"Why it was skipped"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {messages.into_iter().map(skipped_row).collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    }
}

fn skipped_row(message: SkippedMessageView) -> impl IntoView {
    let subject = message
        .subject
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let date = message.date.map(format::date).unwrap_or_default();
    let size = message.size.map(format::bytes).unwrap_or_default();
    view! {
        <tr data-testid="skipped-row">
            <td data-label="Folder">{message.folder}</td>
            <td data-label="Message">
                <span class="subject">{subject}</span>
                <span class="muted small">{date}" · UID "{message.uid}</span>
            </td>
            <td data-label="Size" class="num">{size}</td>
            <td data-label="Why" class="reason">{message.reason}</td>
        </tr>
    }
}
