package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key binding. Which ones apply depends on what has the
// focus; the help line and the ? overlay show only those (see
// Model.helpKeys).
type keyMap struct {
	// Everywhere.
	Quit      key.Binding // q, when no text input has the focus
	ForceQuit key.Binding // ctrl+c, always
	Help      key.Binding
	CloseHelp key.Binding // shown while the help is open: any key closes it

	// Code entry.
	Complete key.Binding
	Submit   key.Binding

	// The main screen.
	CopyCode       key.Binding
	Confirm        key.Binding
	AddForward     key.Binding
	SendFiles      key.Binding
	RemoveForward  key.Binding
	Up, Down       key.Binding
	SwitchPane     key.Binding
	CancelTransfer key.Binding

	// Forms and confirmations; Enter is Submit, shown as what it does.
	AddSubmit, SendSubmit key.Binding
	Cancel                key.Binding
	Yes, No               key.Binding
	SwitchKind            key.Binding

	// The permission dialog.
	AllowOnce, AllowAlways, Deny key.Binding

	// The incoming-file dialog.
	Accept, AcceptInto, Refuse key.Binding

	// Both dialogs: no to every waiting question (one key, named DenyAll
	// or RefuseAll after the dialog); Block, to every later one too, for
	// the rest of the session.
	DenyAll, RefuseAll, Block key.Binding

	// The closed screen; NewCode only when the code was spoiled.
	Exit, NewCode key.Binding

	// The shared terminal (sharepane.go): ours, the peer's, and the
	// dialog of the peer's request for our keyboard.
	ShareTerminal, StopShare, TakeKeyboard key.Binding
	WatchShare, AskKeyboard                key.Binding
	LetType, KeepReadOnly                  key.Binding
}

func newKeyMap() *keyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return &keyMap{
		Quit:      b([]string{"q"}, "q", "quit"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Help:      b([]string{"?"}, "?", "help"),
		CloseHelp: b([]string{"esc"}, "any key", "close help"),

		Complete: b([]string{"tab"}, "tab", "complete"),
		Submit:   b([]string{"enter"}, "enter", "join / new code"),

		CopyCode:       b([]string{"c"}, "c", "copy code"),
		Confirm:        b([]string{"v"}, "v", "verifier matches"),
		AddForward:     b([]string{"a"}, "a", "add forward"),
		SendFiles:      b([]string{"s"}, "s", "send files"),
		RemoveForward:  b([]string{"d"}, "d", "remove forward"),
		Up:             b([]string{"up", "k"}, "↑/k", "up"),
		Down:           b([]string{"down", "j"}, "↓/j", "down"),
		SwitchPane:     b([]string{"tab"}, "tab", "forwards/transfers"),
		CancelTransfer: b([]string{"x"}, "x", "cancel transfer"),

		AddSubmit:  b([]string{"enter"}, "enter", "add"),
		SendSubmit: b([]string{"enter"}, "enter", "send"),
		Cancel:     b([]string{"esc"}, "esc", "cancel"),
		Yes:        b([]string{"y"}, "y", "yes"),
		No:         b([]string{"n", "esc"}, "n/esc", "no"),
		SwitchKind: b([]string{"tab", "up", "down"}, "tab/↑/↓", "direction"),

		AllowOnce:   b([]string{"o"}, "o", "allow once"),
		AllowAlways: b([]string{"a"}, "a", "allow always"),
		Deny:        b([]string{"d", "esc"}, "d/esc", "deny"),

		Accept:     b([]string{"y"}, "y", "accept"),
		AcceptInto: b([]string{"f"}, "f", "accept into folder…"),
		Refuse:     b([]string{"n", "esc"}, "n/esc", "refuse"),

		DenyAll:   b([]string{"D"}, "D", "deny all"),
		RefuseAll: b([]string{"D"}, "D", "refuse all"),
		Block:     b([]string{"B"}, "B", "block all"),

		Exit:    b([]string{"q", "enter", "esc", "space"}, "any key", "exit"),
		NewCode: b([]string{"n"}, "n", "new code"),

		ShareTerminal: b([]string{"t"}, "t", "share terminal"),
		StopShare:     b([]string{"T"}, "T", "stop share"),
		TakeKeyboard:  b([]string{"R"}, "R", "take keyboard"),
		WatchShare:    b([]string{"w"}, "w", "watch"),
		AskKeyboard:   b([]string{"r"}, "r", "ask keyboard"),
		LetType:       b([]string{"y"}, "y", "let them type"),
		KeepReadOnly:  b([]string{"n", "esc"}, "n/esc", "keep read-only"),
	}
}

// bindings implements help.KeyMap over a fixed list.
type bindings struct {
	short []key.Binding
	full  [][]key.Binding
}

func (b bindings) ShortHelp() []key.Binding  { return b.short }
func (b bindings) FullHelp() [][]key.Binding { return b.full }
